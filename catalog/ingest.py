"""Ingestion: files on disk -> tracks, tags, audio features and embeddings in the catalog.

A run has these steps, each safe to interrupt:

1. scan: walk the given paths; keep regular, non-empty files with a supported
   extension; everything else is reported (unsupported format, broken link, FIFO...).
2. hash: sha256 of every candidate's bytes (streamed, in worker processes). The
   hash, not the name or the date, decides what happens next:
   same path + same hash -> unchanged (no-op); same path + new hash -> re-analysed;
   new path + the hash of a track whose file is gone -> moved (path updated, nothing
   re-analysed); new path + the hash of a track that is still present -> reported as a
   duplicate (one track per distinct content, see ``DUPLICATES`` below); else -> new.
3. the three stages of ``catalog.ingest_stages``, cheapest and most wanted first:
   facts (a track row with tags and duration for every new or changed file, within
   seconds), embedding (what a search needs; in the workers on a CPU, each with its own
   copy of the model, in this process on a GPU) and analysis (loudness, tempo, key).
   Workers run in a forkserver pool (``catalog.ingest_workers``) and exit as soon as
   the ingest process is gone, however it died. A file whose decoded length disagrees
   with what its container declares (cut short, mis-declared header, decoding that
   stops part-way) is ingested with a warning the summary lists; one of which less than
   one model patch (~3 s) decodes, or that does not decode at all, loses its track and
   is listed as skipped.

Every batch is one transaction, and each stage works on the tracks that lack its rows,
so a killed run followed by a new run ends with the same catalog as an uninterrupted run.

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
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import exists, func, select

from catalog.db import Catalog
from catalog.ingest_progress import IngestProgress, ready_count
from catalog.ingest_stages import (
    FactsJob,
    IngestSummary,
    Run,
    analysis_stage,
    embedding_stage,
    facts_stage,
    interleaved,
    printable,
)
from catalog.ingest_workers import WorkerPool, file_size, hash_job
from catalog.ingest_write import Overrides, select_model_tags
from catalog.models import AudioFeatures, Embedding, Track
from musicbert.audio_io import SUPPORTED_EXTENSIONS
from musicbert.errors import ConfigError

__all__ = [
    "IngestSummary",
    "db_path",
    "fs_path",
    "analyse_pending",
    "ingest",
    "interleaved",
    "printable",
    "reindex",
    "require_writable",
    "scan",
    "select_model_tags",
]

RAW_PATH_PREFIX = "fs-bytes:"
DEFAULT_BATCH = 16


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


# ---------------------------------------------------------------- the run


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
    analysis: bool = True,
) -> IngestSummary:
    """Bring the catalog in step with the audio files under ``paths`` (see module doc).

    ``embedder`` (a ``musicbert.embedder.Embedder``) adds model tags and an embedding per
    track; ``overrides(path) -> dict`` supplies FileTags fields the files lack (licence,
    source, attribution, artist...), used by the demo library. ``note``: the progress file
    of a larger job this ingest is part of (the demo build), which then also owns its
    ``expected`` track count; by default the ingest writes its own. ``analysis=False``
    leaves the analysis stage to a later run (the demo build analyses once, at its end).
    """
    started = time.perf_counter()
    require_writable(catalog, "ingest")
    workers = max(1, workers or os.cpu_count() or 1)
    if note is not None:
        return _ingest(
            catalog, paths, embedder, workers, progress, batch_size, overrides, started, note,
            False, analysis,
        )  # fmt: skip
    with IngestProgress(catalog) as progress_note:
        return _ingest(
            catalog, paths, embedder, workers, progress, batch_size, overrides, started,
            progress_note, True, analysis,
        )  # fmt: skip


def _ingest(
    catalog, paths, embedder, workers, progress, batch_size, overrides, started, note,
    own_note, analysis,
) -> IngestSummary:  # fmt: skip
    summary = IngestSummary()
    files, summary.skipped = scan(paths)
    model_id = str(embedder.model_id) if embedder is not None else None
    if "ready_at_start" not in note.state:  # what counts as ready: see library_growth
        note.update(model_id=model_id, ready_at_start=ready_count(catalog, model_id))
    note.update(stage="hashing", files=len(files))
    run = Run(catalog, summary, note, batch_size, progress)
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
        if own_note:  # the tracks the library will hold when this run is done
            with catalog.session() as session:
                present = session.scalar(select(func.count(Track.id))) or 0
            note.update(expected=present + sum(1 for _, tid in jobs if tid is None))
        by_fs = {keys_to_fs[k]: (k, tid) for k, tid in jobs}
        facts = [FactsJob(p, k, *hashes[k], tid) for p, (k, tid) in by_fs.items()]
        order = {p: i for i, p in enumerate(interleaved(by_fs))}
        facts_stage(run, pool, sorted(facts, key=lambda job: order[job.path]), overrides)
        if embedder is not None:
            todo = _lacking(catalog, hashes, Embedding, model_id, run)
            embedding_stage(
                run, catalog, embedder, [(t, fs_path(k)) for t, k in todo],
                batch_size=batch_size, progress=progress, pool=pool,
            )  # fmt: skip
        if analysis:
            todo = _lacking(catalog, hashes, AudioFeatures, None, run)
            analysis_stage(
                run, pool, [(t, fs_path(k)) for t, k in todo], completes=embedder is None
            )
    run.finish()
    note.update(stage="finishing", committed=note.state.get("committed", 0))
    summary.wall_seconds = time.perf_counter() - started
    return summary


def analyse_pending(
    catalog: Catalog,
    paths: Iterable[str | os.PathLike],
    *,
    workers: int | None = None,
    progress: bool = True,
    note: IngestProgress | None = None,
    completes: bool = False,
) -> IngestSummary:
    """Stage 3 alone: analyse the catalogued tracks under ``paths`` that have no audio
    features yet (what ``ingest(..., analysis=False)`` left). ``completes``: no embedding
    stage ran, so analysed tracks count as ready in the progress note."""
    started = time.perf_counter()
    require_writable(catalog, "analyse tracks")
    summary = IngestSummary()
    files, _skipped = scan(paths)
    sizes = {db_path(f): ("", file_size(f)) for f in files}
    with IngestProgress(catalog) if note is None else _Kept(note) as own:
        run = Run(catalog, summary, own, DEFAULT_BATCH, progress)
        with WorkerPool(max(1, workers or os.cpu_count() or 1)) as pool:
            todo = _lacking(catalog, sizes, AudioFeatures, None, run)
            analysis_stage(run, pool, [(t, fs_path(k)) for t, k in todo], completes=completes)
    run.finish()
    summary.wall_seconds = time.perf_counter() - started
    return summary


class _Kept:
    """A progress note owned by the caller, used as a context manager that keeps it."""

    def __init__(self, note: IngestProgress) -> None:
        self.note = note

    def __enter__(self) -> IngestProgress:
        return self.note

    def __exit__(self, *exc: object) -> None:
        return None


def _lacking(
    catalog: Catalog, hashes: dict[str, Any], table: Any, model_id: str | None, run: Run
) -> list[tuple[int, str]]:
    """(track id, stored path) of the scanned tracks without a row in ``table`` (an
    embedding from ``model_id``, or audio features), in the order that serves first
    answers (``interleaved``)."""
    condition = table.track_id == Track.id
    if model_id is not None:
        condition = condition & (table.model_id == model_id)
    with catalog.session() as session:
        rows = session.execute(select(Track.id, Track.path).where(~exists().where(condition))).all()
    by_path = {fs_path(path): (tid, path) for tid, path in rows if path in hashes}
    for tid, path in by_path.values():
        run.sizes.setdefault(tid, hashes[path][1])
    return [by_path[p] for p in interleaved(by_path)]


def _progress(total: int, enabled: bool, desc: str):
    import sys

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
    to those stored paths; ``only_missing`` is the same rule (kept for readability). A
    file that is gone or does not decode keeps its track and whatever vector it had.
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
    return embedding_stage(
        None, catalog, embedder, [(t, fs_path(p)) for t, p in todo],
        batch_size=batch_size, progress=progress, drop_failed=False,
    )  # fmt: skip
