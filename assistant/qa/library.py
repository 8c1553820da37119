"""An in-memory view of the catalog that QA reads from.

Questions touch every track (superlatives, "which tracks are in a minor key?"),
so one query per question would be slow. The view loads the rows once and
reloads only when a cheap signature query says the catalog has changed, which
keeps answers fast and still right after an ingest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from catalog.db import Catalog
from catalog.models import AudioFeatures, Embedding, Tag, Track


@dataclass(frozen=True)
class TagInfo:
    name: str
    kind: str
    origin: str
    confidence: float


@dataclass
class TrackInfo:
    """Everything QA may say about one track, copied out of the ORM rows."""

    id: int
    title: str
    artist: str | None = None
    album: str | None = None
    composer: str | None = None
    year: int | None = None
    duration: float | None = None
    licence: str | None = None
    source: str | None = None
    attribution: str | None = None
    score_ref: str | None = None
    track_number: int | None = None
    path: str | None = None
    analysed: bool = False
    tempo: float | None = None
    key: str | None = None
    mode: str | None = None
    key_confidence: float | None = None
    loudness_db: float | None = None
    loudness_lufs: float | None = None  # integrated (BS.1770); None if analysed before v3
    silent: bool = False
    tags: list[TagInfo] = field(default_factory=list)
    #: "file" when tempo / key come from the file's own tags (a rendered score says the
    #: tempo and key it was rendered at), "analysis" when estimated from the audio
    tempo_source: str | None = None
    key_source: str | None = None
    analysed_tempo: float | None = None  # the audio estimate, kept beside a file value
    analysed_key: str | None = None  # "F# minor"

    @property
    def label(self) -> str:
        """How a person tells this track apart: title, and artist when known."""
        return f"{self.title} by {self.artist}" if self.artist else self.title

    @property
    def tag_names(self) -> list[str]:
        return [g.name for g in self.tags]

    @property
    def key_name(self) -> str | None:
        if not self.key:
            return None
        return f"{self.key} {self.mode}" if self.mode else self.key


_FILE_TEMPO = re.compile(r"^tempo:\s*(\d+(?:\.\d+)?)\s*bpm$")
_FILE_KEY = re.compile(r"^key:\s*([a-g])([#b-]?)\s+(major|minor)$")


def _apply_file_tempo_and_key(info: TrackInfo) -> None:
    """A file tag "tempo: 100 bpm" / "key: ab major" is a fact and wins over the estimate."""
    for tag in info.tags:
        if tag.origin not in ("file", "user"):
            continue
        name = tag.name.strip().lower()
        if m := _FILE_TEMPO.match(name):
            info.tempo, info.tempo_source = float(m.group(1)), "file"
        elif m := _FILE_KEY.match(name):
            accidental = {"-": "b"}.get(m.group(2), m.group(2))
            info.key, info.mode = m.group(1).upper() + accidental, m.group(3)
            info.key_confidence, info.key_source = 1.0, "file"


@dataclass
class Snapshot:
    tracks: dict[int, TrackInfo]
    #: model_id -> (track ids, matrix of L2-normalised vectors)
    embeddings: dict[str, tuple[list[int], np.ndarray]]

    def by_artist(self, name: str) -> list[TrackInfo]:
        low = name.casefold()
        return [t for t in self.tracks.values() if t.artist and t.artist.casefold() == low]

    def by_album(self, name: str) -> list[TrackInfo]:
        low = name.casefold()
        return [t for t in self.tracks.values() if t.album and t.album.casefold() == low]


#: A few aggregates that change whenever tracks, features, tags or vectors do. Built once:
#: it runs before every question, so it goes through Core on a plain connection.
_SIGNATURE = select(
    select(func.count(Track.id)).scalar_subquery(),
    select(func.max(Track.updated_at)).scalar_subquery(),
    select(func.count(AudioFeatures.track_id)).scalar_subquery(),
    select(func.max(AudioFeatures.analysed_at)).scalar_subquery(),
    select(func.count(Tag.id)).scalar_subquery(),
    select(func.max(Tag.id)).scalar_subquery(),
    select(func.count(Embedding.id)).scalar_subquery(),
    select(func.max(Embedding.id)).scalar_subquery(),
)


def _signature(catalog: Catalog) -> tuple:
    with catalog.engine.connect() as conn:
        return tuple(conn.execute(_SIGNATURE).one())


def load_snapshot(catalog: Catalog) -> Snapshot:
    tracks: dict[int, TrackInfo] = {}
    with catalog.session() as s:
        rows = s.scalars(
            select(Track).options(
                selectinload(Track.artist),
                selectinload(Track.album),
                selectinload(Track.features),
                selectinload(Track.tags),
            )
        ).all()
        for t in rows:
            f = t.features
            info = TrackInfo(
                id=t.id,
                title=t.title,
                artist=t.artist.name if t.artist else None,
                album=t.album.title if t.album else None,
                composer=t.composer,
                year=t.year if t.year is not None else (t.album.year if t.album else None),
                duration=t.duration or None,
                licence=t.licence,
                source=t.source,
                attribution=t.attribution,
                score_ref=t.score_ref,
                track_number=t.track_number,
                path=t.path,
                tags=[TagInfo(g.name, g.kind, g.origin, float(g.confidence)) for g in t.tags],
            )
            if f is not None:
                info.analysed = True
                info.tempo = f.tempo
                info.key = f.key
                info.mode = f.mode
                info.key_confidence = f.key_confidence
                info.loudness_db = f.loudness_db
                info.loudness_lufs = f.loudness_lufs
                info.silent = bool(f.silent)
                info.tempo_source = "analysis" if f.tempo is not None else None
                info.key_source = "analysis" if f.key else None
                info.analysed_tempo = f.tempo
                info.analysed_key = info.key_name
            _apply_file_tempo_and_key(info)
            tracks[t.id] = info
        grouped: dict[str, tuple[list[int], list[np.ndarray]]] = {}
        for track_id, model_id, dim, blob in s.execute(
            select(Embedding.track_id, Embedding.model_id, Embedding.dim, Embedding.vector)
        ):
            vec = np.frombuffer(blob, dtype="<f4")
            if vec.shape[0] != dim or not np.all(np.isfinite(vec)):
                continue  # a damaged vector says nothing; QA treats the track as unembedded
            ids, vecs = grouped.setdefault(model_id, ([], []))
            ids.append(track_id)
            vecs.append(vec)
    embeddings: dict[str, tuple[list[int], np.ndarray]] = {}
    for model_id, (ids, vecs) in grouped.items():
        mat = np.stack(vecs).astype(np.float32)
        norms = np.linalg.norm(mat, axis=1, keepdims=True)
        embeddings[model_id] = (ids, mat / np.maximum(norms, 1e-12))
    return Snapshot(tracks, embeddings)


class LibraryView:
    """The current snapshot, reloaded when the catalog's signature changes."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._signature: tuple | None = None
        self._snapshot: Snapshot | None = None

    def current(self) -> Snapshot:
        sig = _signature(self.catalog)
        if self._snapshot is None or sig != self._signature:
            self._snapshot = load_snapshot(self.catalog)
            self._signature = sig
        return self._snapshot
