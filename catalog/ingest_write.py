"""The catalog side of ingest: what each stage writes, one transaction per batch.

A track's rows arrive in three steps (``catalog.ingest``), each complete in itself:

1. facts: the ``Track`` row (file tags, names, the declared duration) and its file
   ``Tag`` rows; for a changed file its old features, tags and embeddings go;
2. embedding: the ``Embedding`` and the model ``Tag`` rows, and the decoded duration;
3. analysis: the ``AudioFeatures`` row (loudness, tempo, key), and the decoded duration.

A file that turns out not to decode to usable audio in step 2 or 3 loses its track
(``drop_track``), so the catalog never keeps a row for audio it cannot use. Every
batch is one transaction; when the database refuses one, each item is retried alone,
so one bad row costs only its own track.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import delete, exists, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from catalog.db import Catalog
from catalog.ingest_workers import Facts
from catalog.models import Album, Artist, AudioFeatures, Embedding, Tag, Track
from catalog.queries import get_or_create_album, get_or_create_artist
from catalog.tags import FileTags, display_name

#: Model tags kept per track: the top few per source model, and any above a floor.
MODEL_TAGS_TOP_K = 5
MODEL_TAG_MIN_CONFIDENCE = 0.05
MODEL_TAG_ALWAYS_KEEP = 0.3

Overrides = Callable[[str], dict[str, Any] | None]
Item = TypeVar("Item")


def select_model_tags(tags: Sequence[Any]) -> list[tuple[str, str, float]]:
    """Keep the top ``MODEL_TAGS_TOP_K`` per source model plus any >= ``MODEL_TAG_ALWAYS_KEEP``,
    never below ``MODEL_TAG_MIN_CONFIDENCE``; one row per name (highest confidence wins)."""
    by_source: dict[str, list[Any]] = {}
    for tag in tags:
        by_source.setdefault(getattr(tag, "source", "") or "", []).append(tag)
    best: dict[str, tuple[str, float]] = {}
    for items in by_source.values():
        items = sorted(items, key=lambda t: -float(t.confidence))
        for rank, tag in enumerate(items):
            conf = float(tag.confidence)
            if conf < MODEL_TAG_MIN_CONFIDENCE:
                break
            if rank < MODEL_TAGS_TOP_K or conf >= MODEL_TAG_ALWAYS_KEEP:
                name = str(tag.name).strip().lower()[:256]
                if name and (name not in best or best[name][1] < conf):
                    best[name] = (getattr(tag, "kind", "other") or "other", conf)
    return [(name, kind, conf) for name, (kind, conf) in best.items()]


def _apply_overrides(tags: FileTags, values: dict[str, Any] | None) -> FileTags:
    for name, value in (values or {}).items():
        if hasattr(tags, name) and value is not None:
            if isinstance(getattr(tags, name), list) and isinstance(value, list):
                setattr(
                    tags,
                    name,
                    getattr(tags, name) + [v for v in value if v not in getattr(tags, name)],
                )
            elif getattr(tags, name) in (None, "", []) or name in (
                "licence",
                "source",
                "attribution",
            ):
                setattr(tags, name, value)
    return tags


def write_facts(
    session: Session,
    facts: Facts,
    key: str,
    content_hash: str,
    size: int,
    track_id: int | None,
    overrides: Overrides | None,
) -> Track:
    """Step 1: the track row and its file tags (a changed file loses what it had)."""
    tags = _apply_overrides(
        facts.tags or FileTags(title=display_name(facts.path)),
        (overrides(facts.path) if overrides else None),
    )
    artist = get_or_create_artist(session, tags.artist)
    album_artist = get_or_create_artist(session, tags.album_artist) if tags.album_artist else artist
    album = get_or_create_album(session, tags.album, album_artist, tags.year)
    track = session.get(Track, track_id) if track_id else None
    if track is None:
        track = Track(path=key)
        session.add(track)
    else:
        session.execute(delete(AudioFeatures).where(AudioFeatures.track_id == track.id))
        session.execute(
            delete(Tag).where(Tag.track_id == track.id, Tag.origin.in_(("file", "model")))
        )
        session.execute(delete(Embedding).where(Embedding.track_id == track.id))
        session.expire(track)
    track.content_hash = content_hash
    track.file_size = size
    track.title = tags.title[:512]
    track.artist = artist
    track.album = album
    track.composer = tags.composer
    track.track_number = tags.track_number
    track.duration = round(float(facts.duration), 4)
    track.sample_rate = facts.sample_rate
    track.channels = facts.channels
    track.year = tags.year
    licence = tags.licence or tags.copyright
    track.licence = licence[:256] if licence else None
    track.source = tags.source
    track.attribution = tags.attribution or tags.copyright
    track.score_ref = tags.score_ref
    session.flush()
    labels: dict[str, str] = {}
    for genre in tags.genres:
        labels.setdefault(genre.lower()[:256], "genre")
    for instrument in tags.instruments:
        labels.setdefault(instrument.lower()[:256], "instrument")
    for name, kind in tags.labels:
        labels.setdefault(name.lower()[:256], kind)
    for name, kind in labels.items():
        session.add(Tag(track_id=track.id, name=name, kind=kind, origin="file", confidence=1.0))
    return track


def write_embedding(
    session: Session,
    track_id: int,
    model_id: str,
    vector: np.ndarray,
    model_tags: list[tuple[str, str, float]],
    duration: float | None = None,
) -> None:
    """Step 2: the track's vector from ``model_id`` and its model tags (both replaced)."""
    vector = np.ascontiguousarray(vector, dtype="<f4").reshape(-1)
    session.execute(
        delete(Embedding).where(Embedding.track_id == track_id, Embedding.model_id == model_id)
    )
    session.execute(delete(Tag).where(Tag.track_id == track_id, Tag.origin == "model"))
    session.flush()
    session.add(
        Embedding(
            track_id=track_id, model_id=model_id, dim=int(vector.size), vector=vector.tobytes()
        )
    )
    for name, kind, conf in model_tags:
        session.add(Tag(track_id=track_id, name=name, kind=kind, origin="model", confidence=conf))
    if duration is not None:
        _set_duration(session, track_id, duration)


def write_analysis(session: Session, track_id: int, analysis: dict[str, Any]) -> None:
    """Step 3: the track's audio features (replacing any) and its decoded duration."""
    session.execute(delete(AudioFeatures).where(AudioFeatures.track_id == track_id))
    session.add(
        AudioFeatures(
            track_id=track_id,
            tempo=analysis.get("tempo"),
            tempo_method=analysis.get("tempo_method"),
            tempo_confidence=analysis.get("tempo_confidence"),
            key=analysis.get("key"),
            mode=analysis.get("mode"),
            key_confidence=analysis.get("key_confidence"),
            key_method=analysis.get("key_method"),
            loudness_db=analysis.get("loudness_db"),
            loudness_lufs=analysis.get("loudness_lufs"),
            peak_db=analysis.get("peak_db"),
            silent=bool(analysis.get("silent")),
        )
    )
    _set_duration(session, track_id, float(analysis.get("duration") or 0.0))


def _set_duration(session: Session, track_id: int, seconds: float) -> None:
    track = session.get(Track, track_id)
    if track is not None:
        track.duration = round(float(seconds), 4)


def drop_track(session: Session, track_id: int) -> None:
    """Remove a track whose file does not decode to usable audio, with the artist and
    album only it named (its tags, features and vectors go by cascade)."""
    track = session.get(Track, track_id)
    if track is None:
        return
    album = track.album
    album_id = album.id if album is not None else None
    named = {track.artist_id, album.artist_id if album is not None else None} - {None}
    session.delete(track)
    session.flush()
    if album_id is not None and not session.scalar(
        select(exists().where(Track.album_id == album_id))
    ):
        session.execute(delete(Album).where(Album.id == album_id))
    for who in named:
        if not session.scalar(select(exists().where(Track.artist_id == who))) and not (
            session.scalar(select(exists().where(Album.artist_id == who)))
        ):
            session.execute(delete(Artist).where(Artist.id == who))


def commit_batch(
    catalog: Catalog, items: Sequence[Item], write: Callable[[Session, Item], Any]
) -> tuple[list[tuple[Item, Any]], list[tuple[Item, str]]]:
    """Write ``items`` in one transaction; on a database error, retry them one by one.

    Returns (item, what ``write`` returned) for the items written and (item, one-line
    reason) for those the database refused.
    """
    try:
        with catalog.session() as session:
            results = [write(session, item) for item in items]
        return list(zip(items, results, strict=True)), []
    except SQLAlchemyError:
        pass
    written, refused = [], []
    for item in items:
        try:
            with catalog.session() as session:
                written.append((item, write(session, item)))
        except SQLAlchemyError as exc:
            name = type(getattr(exc, "orig", None) or exc).__name__
            refused.append((item, f"database refused the track ({name})"))
    return written, refused
