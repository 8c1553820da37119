"""Ingestion: files on disk -> tracks, tags, audio features and embeddings in the catalog.

A run has four steps, each safe to interrupt:

1. scan: walk the given paths; keep regular, non-empty files with a supported
   extension; everything else is reported (unsupported format, broken link, FIFO...).
2. hash: sha256 of every candidate's bytes (streamed, in worker processes). The
   hash, not the name or the date, decides what happens next:
   same path + same hash -> unchanged (no-op); same path + new hash -> re-analysed;
   new path + the hash of a track whose file is gone -> moved (path updated, nothing
   re-analysed); new path + the hash of a track that is still present -> reported as a
   duplicate (one track per distinct content, see ``DUPLICATES`` below); else -> new.
3. analyse: tags (mutagen) and decoding + analysis (``catalog.analysis``) in a pool of
   worker processes (forkserver, so torch in the parent is never forked). Each worker
   watches the ingest process and exits as soon as it is gone, however it died (kill -9
   included), so a killed run leaves no workers, forkserver or resource tracker behind.
   A file whose decoded length disagrees with what its container declares (cut short,
   mis-declared header, decoding that stops part-way) is ingested with a warning the
   summary lists, or skipped when less than one model patch (~3 s) of it decodes.
4. commit: in the parent, optionally embed each analysed track (torch stays in one
   process), then write batches of complete tracks, one transaction per batch. A
   track row therefore never exists without its features, tags and embedding, and a
   killed run followed by a new run ends with the same catalog as an uninterrupted run.

DUPLICATES: the same bytes at two paths become ONE track (the first path in sorted
order); the other path is listed in the summary as a duplicate. A person who keeps a
copy of a song in two folders asks for the song, not for two search results; and when
the kept path disappears, the next run moves the track to the copy that remains.

Paths are stored as text. A path whose bytes are not valid UTF-8 is stored as
``fs-bytes:`` + percent-encoded bytes; ``fs_path`` turns a stored path back into one
that ``open`` accepts. Everything else is stored unchanged (emoji included).
"""

from __future__ import annotations

import os
import stat
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from catalog.db import Catalog
from catalog.ingest_progress import IngestProgress
from catalog.ingest_workers import (
    PATCH_SECONDS,
    Analysed,
    WorkerPool,
    analyse_job,
    file_size,
    hash_job,
)
from catalog.models import AudioFeatures, Embedding, Tag, Track
from catalog.queries import get_or_create_album, get_or_create_artist
from catalog.tags import FileTags, display_name
from musicbert.audio_io import SUPPORTED_EXTENSIONS
from musicbert.errors import ConfigError, MusicBertError

RAW_PATH_PREFIX = "fs-bytes:"
DEFAULT_BATCH = 16
#: Model tags kept per track: the top few per source model, and any above a floor.
MODEL_TAGS_TOP_K = 5
MODEL_TAG_MIN_CONFIDENCE = 0.05
MODEL_TAG_ALWAYS_KEEP = 0.3


# ---------------------------------------------------------------- paths in the database


def db_path(path: str | bytes | os.PathLike) -> str:
    """The text stored in ``Track.path`` for a file (absolute, reversible)."""
    raw = os.path.abspath(os.fsencode(os.fspath(path)))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return RAW_PATH_PREFIX + urllib.parse.quote_from_bytes(raw, safe="/")


def fs_path(stored: str) -> str:
    """A stored ``Track.path`` back as a path ``open`` accepts (inverse of ``db_path``)."""
    if stored.startswith(RAW_PATH_PREFIX):
        return os.fsdecode(urllib.parse.unquote_to_bytes(stored[len(RAW_PATH_PREFIX) :]))
    return stored


def printable(path: str) -> str:
    """A path (maybe holding undecodable bytes) as text safe to print or store."""
    return os.fsencode(path).decode("utf-8", errors="replace")


# ---------------------------------------------------------------- summary


@dataclass
class IngestSummary:
    """What a run did. Counts, plus the paths that need a person's attention."""

    added: int = 0
    updated: int = 0
    moved: int = 0
    unchanged: int = 0
    embedded: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, one-line reason)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # ingested, but (path, why)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (path, kept path)
    missing: list[str] = field(default_factory=list)  # catalogued, file gone, kept in catalog
    analysed_seconds: float = 0.0  # audio seconds decoded and analysed
    analysed_bytes: int = 0
    wall_seconds: float = 0.0
    track_ids: list[int] = field(default_factory=list)  # tracks added, updated or moved

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["skipped"] = [{"path": p, "reason": r} for p, r in self.skipped]
        out["warnings"] = [{"path": p, "warning": w} for p, w in self.warnings]
        out["duplicates"] = [{"path": p, "duplicate_of": k} for p, k in self.duplicates]
        return out

    def lines(self) -> list[str]:
        """A short human summary: one line of counts, then one line per problem."""
        speed = ""
        if self.analysed_seconds and self.wall_seconds:
            ratio = self.analysed_seconds / self.wall_seconds
            speed = f", {ratio:.0f}x real time" if ratio >= 10 else f", {ratio:.1f}x real time"
        out = [
            f"added {self.added}, updated {self.updated}, moved {self.moved}, "
            f"unchanged {self.unchanged}, duplicates {len(self.duplicates)}, "
            f"skipped {len(self.skipped)}, embedded {self.embedded} "
            f"({self.wall_seconds:.1f} s{speed})"
        ]
        if self.warnings:
            out[0] = out[0].replace(" (", f", warnings {len(self.warnings)} (", 1)
        out += [f"skipped {p}: {r}" for p, r in self.skipped]
        out += [f"warning {p}: {w}; ingested what decodes" for p, w in self.warnings]
        out += [f"duplicate {p}: same content as {k}" for p, k in self.duplicates]
        out += [f"missing {p}: file is gone (track kept)" for p in self.missing]
        return out


# ---------------------------------------------------------------- scanning


def _reject_reason(path: str) -> str | None:
    """Why a supported-looking path cannot be ingested, or None if it can."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "broken symbolic link" if os.path.islink(path) else "no such file"
    except OSError as exc:
        return f"cannot read ({exc.strerror or exc})"
    if stat.S_ISDIR(st.st_mode):
        return "is a directory"
    if not stat.S_ISREG(st.st_mode):
        kind = "named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else "special file"
        return f"not a regular file ({kind})"
    if st.st_size == 0:
        return "empty file (0 bytes)"
    if not os.access(path, os.R_OK):
        return "permission denied"
    return None


def scan(paths: Iterable[str | os.PathLike]) -> tuple[list[str], list[tuple[str, str]]]:
    """Files to ingest (absolute, sorted) and (path, reason) for everything rejected."""
    found: set[str] = set()
    skipped: list[tuple[str, str]] = []

    def consider(full: str) -> None:
        ext = os.path.splitext(full)[1].lower()
        if ext not in SUPPORTED_EXTENSIONS:
            what = f"'{printable(ext)}'" if ext else "(no extension)"
            skipped.append((printable(full), f"unsupported format {what}"))
            return
        reason = _reject_reason(full)
        if reason:
            skipped.append((printable(full), reason))
        else:
            found.add(full)

    for given in paths:
        root = os.path.abspath(os.fsdecode(os.fspath(given)))
        if os.path.isdir(root):
            for folder, dirs, files in os.walk(
                root,
                onerror=lambda e: skipped.append(
                    (printable(e.filename or "?"), f"cannot list folder ({e.strerror})")
                ),
            ):
                dirs.sort()
                for name in sorted(files):
                    consider(os.path.join(folder, name))
        elif os.path.lexists(root):
            consider(root)
        else:
            skipped.append((printable(root), "no such file or folder"))
    ordered = sorted(found, key=os.fsencode)
    return ordered, skipped


# ---------------------------------------------------------------- catalog side


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


@dataclass
class _Ready:
    """One analysed file waiting to be committed."""

    key: str  # db path
    result: Analysed
    content_hash: str
    size: int
    track_id: int | None  # set when re-analysing a changed file
    embedding: np.ndarray | None = None
    model_id: str | None = None
    model_tags: list[tuple[str, str, float]] = field(default_factory=list)


Overrides = Callable[[str], dict[str, Any] | None]


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


def _write_track(session: Session, item: _Ready, overrides: Overrides | None) -> Track:
    result = item.result
    tags = _apply_overrides(
        result.tags or FileTags(title=display_name(result.path)),
        (overrides(result.path) if overrides else None),
    )
    analysis = result.analysis or {}
    artist = get_or_create_artist(session, tags.artist)
    album_artist = get_or_create_artist(session, tags.album_artist) if tags.album_artist else artist
    album = get_or_create_album(session, tags.album, album_artist, tags.year)
    track = session.get(Track, item.track_id) if item.track_id else None
    if track is None:
        track = Track(path=item.key)
        session.add(track)
    else:
        session.execute(delete(AudioFeatures).where(AudioFeatures.track_id == track.id))
        session.execute(
            delete(Tag).where(Tag.track_id == track.id, Tag.origin.in_(("file", "model")))
        )
        session.execute(delete(Embedding).where(Embedding.track_id == track.id))
        session.expire(track)
    track.content_hash = item.content_hash
    track.file_size = item.size
    track.title = tags.title[:512]
    track.artist = artist
    track.album = album
    track.composer = tags.composer
    track.track_number = tags.track_number
    track.duration = float(analysis.get("duration") or 0.0)
    track.sample_rate = result.sample_rate
    track.channels = result.channels
    track.year = tags.year
    licence = tags.licence or tags.copyright
    track.licence = licence[:256] if licence else None
    track.source = tags.source
    track.attribution = tags.attribution or tags.copyright
    track.score_ref = tags.score_ref
    session.flush()
    session.add(
        AudioFeatures(
            track_id=track.id,
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
    labels: dict[str, str] = {}
    for genre in tags.genres:
        labels.setdefault(genre.lower()[:256], "genre")
    for instrument in tags.instruments:
        labels.setdefault(instrument.lower()[:256], "instrument")
    for name, kind in tags.labels:
        labels.setdefault(name.lower()[:256], kind)
    for name, kind in labels.items():
        session.add(Tag(track_id=track.id, name=name, kind=kind, origin="file", confidence=1.0))
    for name, kind, conf in item.model_tags:
        session.add(Tag(track_id=track.id, name=name, kind=kind, origin="model", confidence=conf))
    if item.embedding is not None and item.model_id:
        _store_embedding(session, track.id, item.model_id, item.embedding)
    return track


def _store_embedding(session: Session, track_id: int, model_id: str, vector: np.ndarray) -> None:
    vector = np.ascontiguousarray(vector, dtype="<f4").reshape(-1)
    session.execute(
        delete(Embedding).where(Embedding.track_id == track_id, Embedding.model_id == model_id)
    )
    session.add(
        Embedding(
            track_id=track_id, model_id=model_id, dim=int(vector.size), vector=vector.tobytes()
        )
    )


def _embed(embedder: Any, path: str) -> tuple[np.ndarray, list[tuple[str, str, float]]]:
    """The track's embedding and model tags; a track shorter than one patch gets no tags
    (musicnn would read mostly zero padding). A damaged file is embedded from what decodes,
    as its analysis was."""
    from musicbert.audio_io import DecodeReport, stream

    description = embedder.describe_stream(stream(path, report=DecodeReport()))
    tags = getattr(description, "tags", []) or []
    duration = getattr(description, "duration", None)
    if duration is not None and float(duration) < PATCH_SECONDS:
        tags = []
    return np.asarray(description.embedding, dtype=np.float32), select_model_tags(tags)


def _commit_batch(
    catalog: Catalog,
    batch: list[_Ready],
    summary: IngestSummary,
    overrides: Overrides | None,
) -> None:
    """One transaction for the whole batch; on a database error, retry file by file."""
    try:
        with catalog.session() as session:
            tracks = [_write_track(session, item, overrides) for item in batch]
        written = list(zip(batch, tracks, strict=True))
    except SQLAlchemyError:
        written = []
        for item in batch:
            try:
                with catalog.session() as session:
                    track = _write_track(session, item, overrides)
                written.append((item, track))
            except SQLAlchemyError as exc:
                reason = f"database refused the track ({type(exc.orig or exc).__name__})"
                summary.skipped.append((printable(item.result.path), reason))
    for item, track in written:
        if item.track_id:
            summary.updated += 1
        else:
            summary.added += 1
        if item.embedding is not None:
            summary.embedded += 1
        summary.track_ids.append(track.id)


def _progress(total: int, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=not enabled,
        file=sys.stderr,
        dynamic_ncols=True,
        leave=True,
    )


def ingest(
    catalog: Catalog,
    paths: Iterable[str | os.PathLike],
    *,
    embedder: Any = None,
    workers: int | None = None,
    progress: bool = True,
    batch_size: int = DEFAULT_BATCH,
    overrides: Overrides | None = None,
    note: IngestProgress | None = None,
) -> IngestSummary:
    """Bring the catalog in step with the audio files under ``paths`` (see module doc).

    ``embedder`` (a ``musicbert.embedder.Embedder``) adds model tags and an embedding per
    track; ``overrides(path) -> dict`` supplies FileTags fields the files lack (licence,
    source, attribution, artist...), used by the demo library. ``note``: the progress file
    of a larger job this ingest is part of (the demo build), which then also owns its
    ``expected`` track count; by default the ingest writes its own.
    """
    started = time.perf_counter()
    require_writable(catalog, "ingest")
    summary = IngestSummary()
    workers = max(1, workers or os.cpu_count() or 1)
    if note is not None:
        return _ingest(
            catalog, paths, embedder, workers, progress, batch_size, overrides, summary,
            started, note, False,
        )  # fmt: skip
    with IngestProgress(catalog) as progress_note:
        return _ingest(
            catalog, paths, embedder, workers, progress, batch_size, overrides, summary,
            started, progress_note, True,
        )  # fmt: skip


def interleaved(paths: Iterable[str]) -> list[str]:
    """Files in an order that serves the first answers: one from each folder in turn
    (sorted within a folder), so a growing library holds some of every kind early
    instead of one whole folder after another."""
    by_folder: dict[bytes, list[str]] = {}
    for path in sorted(paths, key=os.fsencode):
        by_folder.setdefault(os.fsencode(os.path.dirname(path)), []).append(path)
    queues = [by_folder[k] for k in sorted(by_folder)]
    out: list[str] = []
    for i in range(max((len(q) for q in queues), default=0)):
        out += [q[i] for q in queues if i < len(q)]
    return out


def _ingest(
    catalog, paths, embedder, workers, progress, batch_size, overrides, summary, started, note,
    own_note,
) -> IngestSummary:  # fmt: skip
    files, summary.skipped = scan(paths)
    note.update(stage="hashing", files=len(files))
    with WorkerPool(workers) as pool:
        hashes: dict[str, tuple[str, int]] = {}
        total = sum(file_size(f) for f in files)
        with _progress(total, progress and len(files) > 50, "hashing") as bar:
            for _item, (path, digest, size, error) in pool.map_unordered(hash_job, files):
                bar.update(size)
                if error or digest is None:
                    summary.skipped.append((printable(path), error or "cannot read"))
                else:
                    hashes[db_path(path)] = (digest, size)
        keys_to_fs = {db_path(f): f for f in files}
        jobs, moves = _plan(catalog, hashes, summary, [os.fsdecode(os.fspath(p)) for p in paths])
        if moves:
            with catalog.session() as session:
                for track_id, key in moves:
                    track = session.get(Track, track_id)
                    track.path = key
                    summary.track_ids.append(track_id)
            summary.moved += len(moves)
        batch: list[_Ready] = []
        total_bytes = sum(hashes[k][1] for k, _ in jobs)
        by_fs = {keys_to_fs[k]: (k, tid) for k, tid in jobs}
        if own_note:  # the tracks the library will hold when this run is done
            with catalog.session() as session:
                present = session.scalar(select(func.count(Track.id))) or 0
            note.update(expected=present + sum(1 for _, tid in jobs if tid is None))
        note.update(stage="analysing", files=len(jobs), analysed=0)
        with _progress(total_bytes, progress, "analysing") as bar:
            last_commit = time.perf_counter()
            for path, result in pool.map_unordered(analyse_job, interleaved(by_fs)):
                key, track_id = by_fs[path]
                digest, size = hashes[key]
                bar.update(size)
                note.update(analysed=note.state["analysed"] + 1)
                if result.error:
                    summary.skipped.append((printable(path), result.error))
                    continue
                if result.warning:
                    summary.warnings.append((printable(path), result.warning))
                summary.analysed_seconds += float(result.analysis["duration"])
                summary.analysed_bytes += size
                item = _Ready(key, result, digest, size, track_id)
                if embedder is not None:
                    try:
                        item.embedding, item.model_tags = _embed(embedder, path)
                        item.model_id = str(embedder.model_id)
                    except MusicBertError as exc:
                        summary.skipped.append((printable(path), f"not embedded: {exc}"))
                        continue
                batch.append(item)
                first = not (summary.added or summary.updated)  # the first track: at once
                if first or len(batch) >= batch_size or time.perf_counter() - last_commit > 10:
                    _commit_batch(catalog, batch, summary, overrides)
                    batch, last_commit = [], time.perf_counter()
                    note.update(force=True, committed=summary.added + summary.updated)
            if batch:
                _commit_batch(catalog, batch, summary, overrides)
    note.update(stage="embedding", committed=summary.added + summary.updated)
    if embedder is not None:
        summary.embedded += reindex(
            catalog, embedder, paths=[k for k in hashes], progress=False, only_missing=True
        )
    summary.wall_seconds = time.perf_counter() - started
    return summary


def require_writable(catalog: Catalog, what: str) -> None:
    """Say plainly that a read-only catalog cannot be written, before any work is done."""
    if getattr(catalog, "read_only", False):
        raise ConfigError(
            f"cannot {what}: the catalog at {catalog.display_url} is read-only "
            f"({catalog.read_only_reason or 'its folder cannot be written'}); "
            "make it writable or point MUSICBERT_HOME (or --db) at a writable folder"
        )


def _plan(
    catalog: Catalog,
    hashes: dict[str, tuple[str, int]],
    summary: IngestSummary,
    roots: list[str],
) -> tuple[list[tuple[str, int | None]], list[tuple[int, str]]]:
    """Decide per scanned file: unchanged, changed (re-analyse), moved, duplicate or new."""
    with catalog.session() as session:
        rows = session.execute(select(Track.id, Track.path, Track.content_hash)).all()
    by_path = {path: (tid, digest) for tid, path, digest in rows}
    by_hash: dict[str, list[tuple[int, str]]] = {}
    for tid, path, digest in rows:
        by_hash.setdefault(digest, []).append((tid, path))

    jobs: list[tuple[str, int | None]] = []
    new: list[str] = []
    freed: set[int] = set()  # tracks whose content is no longer at their path
    for key in sorted(hashes, key=lambda k: os.fsencode(fs_path(k))):
        digest = hashes[key][0]
        if key in by_path:
            tid, old = by_path[key]
            if old == digest:
                summary.unchanged += 1
            else:
                freed.add(tid)
                jobs.append((key, tid))
        else:
            new.append(key)

    def gone(tid: int, path: str) -> bool:
        if tid in freed:
            return True
        return path not in hashes and not os.path.lexists(fs_path(path))

    moves: list[tuple[int, str]] = []
    claimed: set[int] = set()
    first_new: dict[str, str] = {}
    for key in new:
        digest = hashes[key][0]
        candidates = by_hash.get(digest, [])
        target = next((c for c in candidates if c[0] not in claimed and gone(*c)), None)
        if target is not None:
            claimed.add(target[0])
            if target[0] in freed:
                # Its old path now holds different content: that path becomes a new track.
                jobs = [(k, None if t == target[0] else t) for k, t in jobs]
            moves.append((target[0], key))
            continue
        present = next((p for t, p in candidates if t not in claimed and not gone(t, p)), None)
        original = present or first_new.get(digest)
        if original is not None:
            summary.duplicates.append((printable(fs_path(key)), printable(fs_path(original))))
            continue
        first_new[digest] = key
        jobs.append((key, None))

    root_keys = [db_path(r) for r in roots]
    moved_from = {tid for tid, _ in moves}
    for tid, path, _digest in rows:
        if tid in moved_from or path in hashes:
            continue
        under = any(path == r or path.startswith(r.rstrip("/") + "/") for r in root_keys)
        if under and not os.path.lexists(fs_path(path)):
            summary.missing.append(printable(fs_path(path)))
    return jobs, moves


def reindex(
    catalog: Catalog,
    embedder: Any,
    *,
    paths: Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH,
    progress: bool = True,
    only_missing: bool = False,
) -> int:
    """Re-embed tracks that lack an embedding from ``embedder.model_id``; returns the count.

    Each batch is committed on its own, so an interrupted reindex resumes where it
    stopped. Model tags are replaced along with the vector. ``paths`` limits the work
    to those stored paths; ``only_missing`` is the same rule (kept for readability).
    """
    del only_missing  # the rule is always "no embedding for this model id yet"
    require_writable(catalog, "re-embed tracks")
    model_id = str(embedder.model_id)
    with catalog.session() as session:
        done = set(
            session.scalars(select(Embedding.track_id).where(Embedding.model_id == model_id))
        )
        rows = session.execute(select(Track.id, Track.path).order_by(Track.id)).all()
    wanted = set(paths) if paths is not None else None
    todo = [(tid, p) for tid, p in rows if tid not in done and (wanted is None or p in wanted)]
    count = 0
    from tqdm import tqdm

    with tqdm(
        total=len(todo), desc="embedding", unit="track", disable=not progress, file=sys.stderr
    ) as bar:
        for start in range(0, len(todo), batch_size):
            results: list[tuple[int, np.ndarray, list[tuple[str, str, float]]]] = []
            for tid, stored in todo[start : start + batch_size]:
                bar.update(1)
                try:
                    vector, tags = _embed(embedder, fs_path(stored))
                except (MusicBertError, OSError):
                    continue  # file gone or undecodable: the track keeps its old vector
                results.append((tid, vector, tags))
            with catalog.session() as session:
                for tid, vector, tags in results:
                    _store_embedding(session, tid, model_id, vector)
                    session.execute(delete(Tag).where(Tag.track_id == tid, Tag.origin == "model"))
                    session.flush()
                    for name, kind, conf in tags:
                        session.add(
                            Tag(track_id=tid, name=name, kind=kind, origin="model", confidence=conf)
                        )
            count += len(results)
    return count
