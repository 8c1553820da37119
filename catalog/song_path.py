"""A song path: from one track to another in N steps through the shared space.

"Take me from Nebula to Battle Music in 8 songs": the path starts at the first track,
ends at the second, and each track between is the unused one nearest to its point on
the line between the two (spherically interpolated, since the vectors are unit length)
and to the track chosen before. The chosen tracks are then put in the order of their
projection onto start -> end, so the path never doubles back, and none comes twice.
Filters (``SearchFilters``) narrow the tracks in between. The explanation names what
changes: the labels the start has and the end lacks, and the other way round ("each
step moves from electronic towards orchestral").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select

from catalog.filters import SearchError, SearchFilters
from catalog.models import Tag
from catalog.search import SearchEngine
from catalog.vectors import CatalogVectors, normalise

#: Weight of the last step's track beside the point on the line (smooth neighbours).
NEIGHBOUR_WEIGHT = 0.2
MIN_STEPS, MAX_STEPS = 3, 50


@dataclass
class PathStep:
    track_id: int
    progress: float  # 0 at the start track, 1 at the end track (projection onto the way)
    to_previous: float | None  # cosine similarity to the track before


@dataclass
class SongPath:
    start_id: int
    end_id: int
    steps: list[PathStep] = field(default_factory=list)
    start_labels: list[str] = field(default_factory=list)
    end_labels: list[str] = field(default_factory=list)

    @property
    def track_ids(self) -> list[int]:
        return [s.track_id for s in self.steps]

    def explanation(self) -> str:
        frm = " and ".join(self.start_labels[:2]) or "the first track"
        to = " and ".join(self.end_labels[:2]) or "the last track"
        return f"each step moves from {frm} towards {to}"

    def to_dict(self) -> dict:
        return {
            "start_id": self.start_id,
            "end_id": self.end_id,
            "explanation": self.explanation(),
            "steps": [
                {"track_id": s.track_id, "progress": s.progress, "to_previous": s.to_previous}
                for s in self.steps
            ],
        }


def _slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    omega = float(np.arccos(np.clip(a @ b, -1.0, 1.0)))
    if omega < 1e-6:
        return a.copy()
    v = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
    return v / (np.linalg.norm(v) or 1.0)


def song_path(
    engine: SearchEngine,
    start: int | str,
    end: int | str,
    steps: int = 8,
    filters: SearchFilters | None = None,
) -> SongPath:
    """``steps`` tracks from ``start`` to ``end`` (both included), no track twice."""
    if not MIN_STEPS <= steps <= MAX_STEPS:
        raise SearchError(f"a song path has {MIN_STEPS} to {MAX_STEPS} songs, not {steps}")
    a_id, b_id = engine.resolve_track(start), engine.resolve_track(end)
    if a_id == b_id:
        raise SearchError("a song path needs two different tracks")
    ids, vecs = CatalogVectors(engine.catalog, engine.model_id, engine.dim).all()
    where = {int(t): i for i, t in enumerate(ids)}
    for t in (a_id, b_id):
        if t not in where:
            raise SearchError(f"track {t} has no vector yet: run `musicbert reindex`")
    vecs = normalise(vecs)
    a, b = vecs[where[a_id]], vecs[where[b_id]]
    filters = filters or SearchFilters()
    usable = np.ones(len(ids), bool)
    allowed = engine.allowed_ids(filters)  # None: every track
    if allowed is not None:
        usable &= np.isin(ids, allowed)
    usable &= ~np.isin(ids, [a_id, b_id, *filters.exclude_ids])
    way = b - a
    progress = (vecs - a) @ way / float(way @ way or 1.0)
    chosen: list[int] = []
    prev = a
    for i in range(1, steps - 1):
        if not usable.any():
            raise SearchError(
                f"only {len(chosen)} tracks fit between them; ask for fewer songs or fewer filters"
            )
        target = _slerp(a, b, i / (steps - 1))
        score = vecs @ target + NEIGHBOUR_WEIGHT * (vecs @ prev)
        j = int(np.argmax(np.where(usable, score, -np.inf)))
        usable[j] = False
        chosen.append(j)
        prev = vecs[j]
    chosen.sort(key=lambda j: progress[j])  # along the way, never back
    path = [PathStep(a_id, 0.0, None)]
    prev = a
    for j in chosen:
        path.append(
            PathStep(int(ids[j]), round(float(progress[j]), 3), round(float(vecs[j] @ prev), 3))
        )
        prev = vecs[j]
    path.append(PathStep(b_id, 1.0, round(float(b @ prev), 3)))
    start_labels, end_labels = _contrast(engine.catalog, a_id, b_id)
    return SongPath(a_id, b_id, path, start_labels, end_labels)


def _labels(catalog, track_id: int) -> list[str]:
    """A track's genre, mood and instrument labels, surest first."""
    with catalog.session() as s:
        rows = s.execute(
            select(Tag.name, Tag.kind, Tag.confidence).where(Tag.track_id == track_id)
        ).all()
    order = {"genre": 0, "mood": 1, "instrument": 2}
    rows = [r for r in rows if r.kind in order]
    rows.sort(key=lambda r: (order[r.kind], -(r.confidence or 0.0)))
    return list(dict.fromkeys(r.name.lower() for r in rows))


def _contrast(catalog, a_id: int, b_id: int) -> tuple[list[str], list[str]]:
    """Labels the start has and the end lacks, and the other way round."""
    a, b = _labels(catalog, a_id), _labels(catalog, b_id)
    return [x for x in a if x not in b], [x for x in b if x not in a]
