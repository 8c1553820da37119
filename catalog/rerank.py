"""Re-ranking a search's nearest candidates: by the lexical evidence of the query's
words, read from SQL (tags and titles), and for variety (maximal marginal relevance).

The index finds candidates by the shared space alone; these two steps reorder them.
They live apart from ``catalog.search`` (which asks the index, applies filters and
explains hits) because each is a ranking policy of its own, measured on its own
(``benchmarks/real_music.py`` for the lexical weights).
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import func, select

from catalog.db import Catalog
from catalog.lexical import fuse, tag_confidences, tag_evidence, title_evidence
from catalog.models import Tag, Track
from musicbert.vocabulary import PHRASES, tags_in


def lexical_rerank(
    catalog: Catalog,
    index,
    query: np.ndarray,
    candidates: list[tuple[int, float, float]],
    words: str,
    allowed: np.ndarray | None,
    excluded: set[int],
    limit: int,
) -> list[tuple[int, float, float]]:
    """(id, score, cosine) of the candidates, plus tracks tagged with what ``words``
    name, re-scored by ``fuse`` and sorted. Reads only titles and tags, not whole rows:
    this runs on hundreds of candidates per query."""
    wanted = tags_in(words)
    extra = _tagged(catalog, wanted, allowed, limit) - {i for i, *_ in candidates} - excluded
    ids = sorted(i for i in extra if i in index)
    if ids:
        sims = index.vectors(ids) @ query
        candidates = candidates + [(i, float(c), float(c)) for i, c in zip(ids, sims, strict=True)]
    ids = [i for i, *_ in candidates]
    titles: dict[int, str] = {}
    stored: dict[int, list[tuple[str, float]]] = {i: [] for i in ids}
    with catalog.session() as session:
        for chunk in range(0, len(ids), 900):  # SQLite's bound-parameter limit
            part = ids[chunk : chunk + 900]
            titles.update(
                session.execute(select(Track.id, Track.title).where(Track.id.in_(part))).all()
            )
            rows = select(Tag.track_id, Tag.name, Tag.confidence).where(Tag.track_id.in_(part))
            for track_id, name, confidence in session.execute(rows):
                stored[track_id].append((name, confidence))
    tags = tag_evidence(words, [tag_confidences(stored[i]) for i in ids])
    title_scores = title_evidence(words, [titles.get(i, "") for i in ids])
    scores = fuse(np.array([c for *_, c in candidates], np.float32), tags, title_scores)
    order = np.argsort(-scores, kind="stable")
    return [(candidates[j][0], float(scores[j]), candidates[j][2]) for j in order]


def _tagged(catalog: Catalog, wanted: set[str], allowed, limit: int) -> set[int]:
    """Tracks carrying a tag the query names (any spelling), at most ``limit`` of them."""
    if not wanted:
        return set()
    spellings = {p.casefold() for t in wanted for p in PHRASES.get(t, (t,))} | set(wanted)
    query = (
        select(Tag.track_id)
        .where(func.lower(Tag.name).in_(sorted(spellings)))
        .group_by(Tag.track_id)
        .order_by(func.max(Tag.confidence).desc(), Tag.track_id)
        .limit(limit)
    )
    if allowed is not None:
        query = query.where(Tag.track_id.in_([int(i) for i in allowed[:50_000]]))
    with catalog.session() as session:
        return set(session.scalars(query))


def mmr(ranked: list, vectors: np.ndarray, k: int, diversity: float) -> list:
    """Maximal marginal relevance: trade the ranking score for novelty. ``ranked`` holds
    (id, score, ...) best first, ``vectors`` their unit vectors in the same order."""
    relevance = np.array([score for _, score, *_ in ranked], np.float32)  # fused or cosine
    # on the scale of the candidates: ranking scores differ by hundredths where
    # tracks differ by tenths, and raw scores would let novelty outvote relevance
    spread = float(relevance.max() - relevance.min())
    relevance = (relevance - relevance.min()) / spread if spread > 1e-6 else relevance * 0
    pairwise = vectors @ vectors.T
    keep = 1.0 - diversity
    chosen: list[int] = []
    left = list(range(len(ranked)))
    while left and len(chosen) < k:
        if chosen:
            redundancy = pairwise[np.ix_(left, chosen)].max(axis=1)
        else:
            redundancy = np.zeros(len(left))
        gains = keep * relevance[left] - diversity * redundancy
        pick = left[int(np.argmax(gains))]
        chosen.append(pick)
        left.remove(pick)
    return [ranked[i] for i in chosen]


__all__ = ["lexical_rerank", "mmr"]
