"""Search and recommendation: SQL filters + FAISS over MusicBERT embeddings.

A text query is embedded by the model's text tower into the same space as the
tracks' audio embeddings; the vector index finds the nearest tracks. Filters
(artist, tag, tempo, key, ...) are answered by SQL as a set of allowed track ids
that the index searches within, so a filtered search still returns k tracks
whenever k tracks pass. Each hit carries the reasons it matched.

``SearchEngine`` receives an embedder (anything with ``embed_text``, ``model_id``
and ``dim``); it never builds one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
from sqlalchemy import func, select

from catalog.db import Catalog
from catalog.explain import explain_likeness, explain_query, fallback_reason
from catalog.filters import SearchError, SearchFilters, filter_query
from catalog.index_config import FLAT_MAX, IndexConfig
from catalog.models import PlayHistory, Track
from catalog.queries import find_tracks, track_rows
from catalog.rerank import lexical_rerank, mmr
from catalog.vector_index import VectorIndex
from catalog.vectors import normalise
from musicbert.errors import NotFoundError
from musicbert.vocabulary import PHRASES

#: "No good match": a text search whose query talks about nothing musical gets its
#: closest tracks offered as such. The signal is the query's best cosine, in the text
#: tower's own (MiniLM) space, to the music vocabulary (``musicbert.vocabulary``: tags,
#: genres, moods, instruments and their phrasings), keyed by text tower. Measured by
#: ``benchmarks/no_match.py`` on the demo library (107 tracks) with the default model
#: musicbert-15a4173ded7d: 20 sensible dev queries ("calm piano", "metal", "electronic
#: dance music", ...) score 0.495-1.0, 14 nonsense ones ("🦄🦄", "asdkjh qwe", "the quick
#: brown fox", "tax return form", ...) 0.144-0.404; the threshold is the midpoint, and
#: the 15 held-out queries are all on the right side. The shared-space cosine of the best
#: hit (``Hit.similarity``) does NOT separate them for this model (ROC AUC 0.61:
#: "qwertyuiop" 0.55 beats "string quartet" 0.52, "techno" 0.24 is below "🦄🦄" 0.27),
#: so it is reported but not used. A tower not listed here is never flagged.
NO_MATCH_SIMILARITY: dict[str, float] = {
    "sentence-transformers/all-MiniLM-L6-v2": 0.45,
}


def music_vocabulary() -> list[str]:
    """The phrases a query is compared with to tell music requests from nonsense."""
    from musicbert.vocabulary import ERAS, GENRES, INSTRUMENTS, MOODS

    words = set(PHRASES) | {p for ps in PHRASES.values() for p in ps}
    return sorted(words | set(GENRES) | set(MOODS) | set(INSTRUMENTS) | set(ERAS))


class TextEmbedder(Protocol):
    model_id: str
    dim: int

    def embed_text(self, texts: list[str]) -> np.ndarray: ...


# --------------------------------------------------------------------------- hits


@dataclass
class Hit:
    """One result: the track, its ranking score and why it was chosen.

    The score is the cosine similarity to the query, plus, for a text search, the
    lexical evidence of the query's words (``catalog.lexical.fuse``); ``similarity``
    is the shared-space cosine alone.
    """

    track_id: int
    score: float
    title: str
    artist: str | None
    album: str | None
    why: list[str] = field(default_factory=list)
    path: str | None = None
    duration: float | None = None
    similarity: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- the engine


class SearchEngine:
    """Text search, similar tracks, mixes and refinements over one catalog and one model."""

    #: A mix or MMR re-ranking looks at this many times k candidates.
    CANDIDATES_PER_RESULT = 4
    #: A text search re-ranks this many times k nearest candidates (at least RERANK_MIN)
    #: with the lexical evidence of its words.
    RERANK_PER_RESULT = 10
    RERANK_MIN = 200
    #: Query texts whose embeddings are kept (least recently used dropped first).
    TEXT_CACHE = 256

    def __init__(
        self,
        catalog: Catalog,
        embedder: TextEmbedder,
        *,
        index: VectorIndex | None = None,
        config: IndexConfig | None = None,
        freshness_s: float | None = None,
    ):
        self.catalog, self.embedder = catalog, embedder
        self.model_id, self.dim = str(embedder.model_id), int(embedder.dim)
        if index is not None and (index.model_id, index.dim) != (self.model_id, self.dim):
            index = None  # built for another model: never search it with these vectors
        self.index = index or VectorIndex.open(catalog, self.model_id, self.dim, config=config)
        self._text_cache: dict[str, np.ndarray] = {}
        self._vocabulary: np.ndarray | None = None  # text-tower vectors of music_vocabulary()
        #: What the index did at open and at later syncs (rebuilds, catch-ups), for the UI.
        self.notices: list[str] = [self.index.message]
        #: How stale (seconds) the index may be before a query checks SQL for changes.
        self.freshness_s = (
            freshness_s if freshness_s is not None else (0.0 if self.index.count <= FLAT_MAX else 5)
        )

    # ----------------------------------------------------------------- public API

    def query_vector(self, text: str) -> np.ndarray:
        """The normalised MusicBERT text embedding of a query, shape (dim,).

        Kept in a small cache: a conversation repeats its phrases ("more upbeat").
        """
        if not isinstance(text, str) or not text.strip():
            raise SearchError("say what to search for (the query is empty)")
        text = " ".join(text.split())
        cached = self._text_cache.pop(text, None)
        if cached is None:
            vector = np.asarray(self.embedder.embed_text([text]), np.float32)
            if vector.shape != (1, self.dim):
                raise SearchError(
                    f"the embedder returned shape {vector.shape}, expected (1, {self.dim})"
                )
            cached = normalise(vector)[0]
            while len(self._text_cache) >= self.TEXT_CACHE:
                self._text_cache.pop(next(iter(self._text_cache)))
        self._text_cache[text] = cached  # most recently used last
        return cached.copy()

    def search(
        self,
        text: str,
        k: int = 10,
        filters: SearchFilters | None = None,
        diversity: float = 0.0,
    ) -> list[Hit]:
        """Tracks that best match a text description, best first."""
        query = self.query_vector(text)
        ranked = self._ranked(query, k, filters, diversity, words=text)
        return self._hits(ranked, lambda t: explain_query(t, text, filters))

    def music_relevance(self, text: str) -> float | None:
        """How much a query talks about music: its best text-tower cosine to the music
        vocabulary (None when the embedder has no text tower to ask)."""
        tower = getattr(self.embedder, "text_tower", None)
        if tower is None or not text.strip():
            return None
        if self._vocabulary is None:
            self._vocabulary = normalise(np.asarray(tower.embed(music_vocabulary()), np.float32))
        query = normalise(np.asarray(tower.embed([" ".join(text.split())]), np.float32))
        return float((self._vocabulary @ query[0]).max())

    def no_good_match(self, text: str, hits: list[Hit]) -> bool:
        """Whether a text search's hits are only the closest tracks, not good matches.

        True when the query's ``music_relevance`` is under the text tower's calibrated
        ``NO_MATCH_SIMILARITY`` and no hit carries lexical evidence (a tag or title word
        the query names). Never True for a tower without a calibrated threshold.
        """
        config = getattr(self.embedder, "config", None)
        threshold = NO_MATCH_SIMILARITY.get(getattr(config, "text_tower_id", None))
        if threshold is None or not hits:
            return False
        if any(h.similarity is not None and h.score > h.similarity + 1e-4 for h in hits):
            return False  # a tag or title word the query names: a match of another kind
        relevance = self.music_relevance(text)
        return relevance is not None and relevance < threshold

    def similar(
        self, track_id: int | str, k: int = 10, filters: SearchFilters | None = None
    ) -> list[Hit]:
        """Tracks that sound like one track (given by id or name), the track itself excluded."""
        seed = self.resolve_track(track_id)
        vector = self.track_vectors([seed])[0]
        ranked = self._ranked(vector, k, filters, 0.0, exclude={seed})
        seeds = self._rows([seed])
        return self._hits(ranked, lambda t: explain_likeness(t, seeds.values()))

    def mix(
        self, seed_ids: list[int | str], k: int = 10, filters: SearchFilters | None = None
    ) -> list[Hit]:
        """Tracks near the centre of several seed tracks (a mix), seeds excluded."""
        if not seed_ids:
            raise SearchError("a mix needs at least one seed track")
        seeds = list(dict.fromkeys(self.resolve_track(s) for s in seed_ids))
        centre = normalise(self.track_vectors(seeds).mean(axis=0, keepdims=True))[0]
        ranked = self._ranked(centre, k, filters, 0.0, exclude=set(seeds))
        rows = self._rows(seeds)
        return self._hits(ranked, lambda t: explain_likeness(t, rows.values()))

    def refined_vector(
        self,
        query: str | np.ndarray,
        toward: str | None,
        away: str | None = None,
        strength: float = 0.5,
    ) -> np.ndarray:
        """``query`` moved along emb(toward) - emb(away), renormalised (chain refinements)."""
        if not (toward and toward.strip()) and not (away and away.strip()):
            raise SearchError("say which way to refine (more of what, or less of what)")
        if isinstance(query, str):
            base = self.query_vector(query)
        else:
            base = np.asarray(query, np.float32).reshape(-1)
            if base.shape != (self.dim,):
                raise SearchError(f"a query vector must have {self.dim} values, not {base.size}")
            base = normalise(base[None])[0]
        direction = np.zeros(self.dim, np.float32)
        if toward and toward.strip():
            direction += self.query_vector(toward)
        if away and away.strip():
            direction -= self.query_vector(away)
        norm = float(np.linalg.norm(direction))
        if norm < 1e-6:
            raise SearchError(f"{toward!r} and {away!r} mean the same to the model; nothing moves")
        return normalise((base + strength * direction / norm)[None])[0]

    def refine(
        self,
        query: str | np.ndarray,
        toward: str | None,
        away: str | None = None,
        k: int = 10,
        filters: SearchFilters | None = None,
        strength: float = 0.5,
    ) -> list[Hit]:
        """Search again after moving the query ("more upbeat", "less electronic")."""
        vector = self.refined_vector(query, toward, away, strength)
        moved = []
        if toward and toward.strip():
            moved.append(f"moved toward {toward.strip()!r}")
        if away and away.strip():
            moved.append(f"moved away from {away.strip()!r}")
        words = " ".join(p for p in (query if isinstance(query, str) else "", toward or "") if p)
        ranked = self._ranked(vector, k, filters, 0.0, words=words)
        return self._hits(ranked, lambda t: explain_query(t, words, filters) + moved)

    def resolve_track(self, ref: int | str) -> int:
        """A track id from an id or a name; unknown names get close-name suggestions."""
        if isinstance(ref, (int, np.integer)) or (isinstance(ref, str) and ref.strip().isdigit()):
            track_id = int(ref)
            with self.catalog.session() as session:
                if session.get(Track, track_id) is None:
                    raise NotFoundError(f"there is no track with id {track_id}")
            return track_id
        name = str(ref or "").strip()
        if not name:
            raise SearchError("name a track (its title or id)")
        return self._track_by_name(name)

    # ----------------------------------------------------------------- internals

    def _track_by_name(self, name: str) -> int:
        found = find_tracks(self.catalog, name)
        matches = found.matches
        close = [m for m in matches if m.kind in ("exact", "case", "accent")]
        if len(close) == 1 or len(matches) == 1:
            return self._embedded_first((close or matches)[0].track_ids)
        if matches:
            names = ", ".join(repr(m.name) for m in matches[:4])
            raise NotFoundError(f"{name!r} could be {names}; say which (or give the track id)")
        hint = ", ".join(repr(s) for s in found.suggestions[:3])
        raise NotFoundError(
            f"no track called {name!r}" + (f"; did you mean {hint}?" if hint else "")
        )

    def _embedded_first(self, track_ids: list[int]) -> int:
        """Of tracks sharing a title, the first one the index can search from."""
        return next((t for t in sorted(track_ids) if t in self.index), min(track_ids))

    def track_vectors(self, track_ids: list[int]) -> np.ndarray:
        """The stored unit vectors of these tracks (NotFoundError for one without)."""
        self._fresh()
        present = [t in self.index for t in track_ids]
        if not all(present):
            missing = [t for t, ok in zip(track_ids, present, strict=True) if not ok][0]
            raise NotFoundError(
                f"track {missing} has no embedding from model {self.model_id}; run"
                " `musicbert reindex` to embed it"
            )
        return self.index.vectors(track_ids)

    def _fresh(self) -> None:
        message = self.index.refresh(self.freshness_s)
        if message and "up to date" not in message:
            self.notices.append(message)

    def _require_vectors(self) -> None:
        if self.index.count:
            return
        with self.catalog.session() as session:
            tracks = session.scalar(select(func.count(Track.id)))
        from catalog.ingest_progress import describe_ingest, running_ingest

        ingest = running_ingest(self.catalog)
        if ingest is not None:  # its first batch is not committed yet (or not embedded)
            raise NotFoundError(
                f"nothing to search yet: {describe_ingest(ingest)}; search again in a moment"
            )
        if not tracks:
            raise NotFoundError("the catalog is empty: add music with `musicbert ingest <folder>`")
        raise NotFoundError(
            f"none of the {tracks} tracks has an embedding from model {self.model_id}:"
            " run `musicbert reindex`"
        )

    def _recent(self, n: int) -> set[int]:
        if n <= 0:
            return set()
        query = (
            select(PlayHistory.track_id)
            .group_by(PlayHistory.track_id)
            .order_by(func.max(PlayHistory.played_at).desc(), func.max(PlayHistory.id).desc())
            .limit(n)
        )
        with self.catalog.session() as session:
            return set(session.scalars(query))

    def allowed_ids(self, filters: SearchFilters) -> np.ndarray | None:
        """Track ids passing the filters (None: every track); NotFoundError if none pass."""
        if not filters.narrows():
            return None
        with self.catalog.session() as session:
            ids = np.fromiter(session.scalars(filter_query(session, filters)), np.int64)
        if not len(ids):
            raise NotFoundError(f"no track matches: {filters.describe()}")
        return ids

    def _ranked(
        self,
        query: np.ndarray,
        k: int,
        filters: SearchFilters | None,
        diversity: float,
        exclude: set[int] | None = None,
        words: str | None = None,
    ) -> list[tuple[int, float, Track]]:
        """Best tracks for ``query``: the index's nearest, re-ranked with the lexical
        evidence of ``words`` (tags and titles they name, ``catalog.lexical``) when given."""
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise SearchError(f"k must be a whole number of at least 1, not {k!r}")
        if not 0.0 <= diversity <= 1.0:
            raise SearchError(f"diversity must be between 0 and 1, not {diversity}")
        filters = filters or SearchFilters()
        filters.check()
        self._fresh()
        self._require_vectors()
        allowed = self.allowed_ids(filters)
        excluded = (
            set(exclude or ()) | set(filters.exclude_ids) | self._recent(filters.exclude_recent)
        )
        if allowed is not None and excluded:
            allowed = np.setdiff1d(allowed, np.fromiter(excluded, np.int64))
            if not len(allowed):
                raise NotFoundError(
                    f"every track matching ({filters.describe()}) is excluded or recently played"
                )
        keep = k * self.CANDIDATES_PER_RESULT if diversity > 0 else k
        want = max(keep, k * self.RERANK_PER_RESULT, self.RERANK_MIN) if words else keep
        for attempt in range(2):
            over = len(excluded) if allowed is None else 0
            scores, ids = self.index.search(
                query, want + over, id_filter=self._index_filter(filters, allowed, excluded)
            )
            # (id, ranking score, shared-space cosine); the score gains lexical evidence
            candidates = [
                (int(i), float(s), float(s))
                for i, s in zip(ids[0], scores[0], strict=True)
                if i >= 0 and int(i) not in excluded
            ]
            if words and candidates:
                candidates = lexical_rerank(
                    self.catalog,
                    self.index,
                    query,
                    candidates,
                    words,
                    allowed,
                    excluded,
                    self.RERANK_MIN,
                )
            candidates = candidates[:keep]  # only these are shown: load only their rows
            rows = self._rows([i for i, *_ in candidates])
            if all(i in rows for i, *_ in candidates) or attempt:
                break
            self.notices.append(self.index.sync())  # a row vanished: SQL changed under us
        ranked = [(i, s, rows[i], c) for i, s, c in candidates if i in rows]
        if not ranked and allowed is not None:
            raise NotFoundError(
                f"the {len(allowed)} track(s) matching ({filters.describe()}) have no embedding"
                f" from model {self.model_id}: run `musicbert reindex`"
            )
        if not ranked:
            raise NotFoundError("no track is left once excluded and recently played ones are out")
        if diversity > 0:
            vectors = self.index.vectors([i for i, *_ in ranked])
            ranked = mmr(ranked, vectors, k, diversity)
        return ranked[:k]

    def _index_filter(self, filters: SearchFilters, allowed, excluded: set[int]):
        """What the index searches within: the allowed ids, or for an index that runs SQL
        (pgvector) the filter query itself, so filters and similarity are one statement."""
        if allowed is None or not getattr(self.index, "sql_filters", False):
            return allowed
        from catalog.pgvector_index import SqlFilter

        with self.catalog.session() as session:
            query = filter_query(session, filters)
        if excluded:
            query = query.where(Track.id.not_in(sorted(excluded)))
        return SqlFilter(query, len(allowed))

    def _rows(self, ids: list[int]) -> dict[int, Track]:
        return {track.id: track for track in track_rows(self.catalog, ids)}

    def _hits(self, ranked, explain) -> list[Hit]:
        hits = []
        for track_id, score, track, similarity in ranked:
            why = explain(track) or fallback_reason(track)
            hits.append(
                Hit(
                    track_id=track_id,
                    score=round(score, 4),
                    title=track.title,
                    artist=track.artist.name if track.artist else None,
                    album=track.album.title if track.album else None,
                    why=why,
                    path=track.path,
                    duration=track.duration,
                    similarity=round(similarity, 4),
                )
            )
        return hits


__all__ = ["NO_MATCH_SIMILARITY", "Hit", "SearchEngine"]
