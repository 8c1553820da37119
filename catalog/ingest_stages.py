"""The three stages of an ingest run, in the order that serves a person's first answers.

1. facts: tags (mutagen) and the container's header, in worker processes: every new or
   changed file becomes a track row (names, file tags, declared duration) within
   seconds, so the whole library can be listed and named at once;
2. embedding: decode + MusicBERT embedding + musicnn tags: what a search needs, track
   by track, the first at once. On a CPU each worker process embeds with its own copy
   of the model and one thread; on a GPU the ingest process does it;
3. analysis: decode + loudness, tempo and key, in worker processes: what only some
   questions need, last.

Each stage works on the tracks that lack its rows (not on the files that changed), so a
run that was interrupted at any point is finished by the next one. Results are written
in batches, one transaction each (``catalog.ingest_write``); the first result at once,
then every ``batch_size`` tracks or 10 s. Per stage, the wall seconds and the audio it
covered go into ``IngestSummary.stages`` (what ``benchmarks/ingest.py`` reports).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from catalog.db import Catalog
from catalog.ingest_progress import IngestProgress
from catalog.ingest_workers import (
    Embedded,
    WorkerPool,
    analyse_job,
    embed_file,
    embed_job,
    facts_job,
)
from catalog.ingest_write import (
    Overrides,
    commit_batch,
    drop_track,
    write_analysis,
    write_embedding,
    write_facts,
)

#: The longest a finished result waits for its batch to fill before it is committed.
COMMIT_EVERY_S = 10.0


def printable(path: str) -> str:
    """A path (maybe holding undecodable bytes) as text safe to print or store."""
    return os.fsencode(path).decode("utf-8", errors="replace")


@dataclass
class IngestSummary:
    """What a run did. Counts, plus the paths that need a person's attention."""

    added: int = 0
    updated: int = 0
    moved: int = 0
    unchanged: int = 0
    embedded: int = 0
    analysed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, one-line reason)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # ingested, but (path, why)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (path, kept path)
    missing: list[str] = field(default_factory=list)  # catalogued, file gone, kept in catalog
    analysed_seconds: float = 0.0  # audio seconds decoded (each track counted once)
    analysed_bytes: int = 0
    wall_seconds: float = 0.0
    track_ids: list[int] = field(default_factory=list)  # tracks added, updated or moved
    #: per stage ("facts", "embedding", "analysis"): tracks, wall seconds, audio seconds
    stages: dict[str, dict[str, float]] = field(default_factory=dict)

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


@dataclass
class Run:
    """One ingest run's shared state: where it writes, what it reports, how it batches."""

    catalog: Catalog
    summary: IngestSummary
    note: IngestProgress
    batch_size: int
    progress: bool
    fresh: dict[int, str] = field(default_factory=dict)  # track id -> "added" / "updated"
    audio: dict[int, float] = field(default_factory=dict)  # track id -> decoded seconds
    sizes: dict[int, int] = field(default_factory=dict)  # track id -> file bytes

    def warn(self, path: str, warning: str | None) -> None:
        entry = (printable(path), warning)
        if warning and entry not in self.summary.warnings:
            self.summary.warnings.append(entry)

    def dropped(self, track_id: int, path: str, reason: str) -> None:
        """A track removed because its file does not decode to usable audio."""
        self.summary.skipped.append((printable(path), reason))
        self.summary.warnings = [w for w in self.summary.warnings if w[0] != printable(path)]
        how = self.fresh.pop(track_id, None)
        if how == "added":
            self.summary.added -= 1
        elif how == "updated":
            self.summary.updated -= 1
        if track_id in self.summary.track_ids:
            self.summary.track_ids.remove(track_id)
        self.audio.pop(track_id, None)

    def finish(self) -> None:
        self.summary.analysed_seconds = float(sum(self.audio.values()))
        self.summary.analysed_bytes = int(sum(self.sizes.get(t, 0) for t in self.audio))


class Batches:
    """Results waiting to be written: the first at once, then every ``batch_size`` or 10 s."""

    def __init__(
        self,
        run: Run,
        write: Callable[[Session, Any], Any],
        done: Callable[[Any, Any], None],
        refused: Callable[[Any, str], None],
    ) -> None:
        self.run, self.write, self.done, self.refused = run, write, done, refused
        self.pending: list[Any] = []
        self.committed = 0
        self.last = time.perf_counter()

    def add(self, item: Any) -> None:
        self.pending.append(item)
        if (
            self.committed == 0
            or len(self.pending) >= self.run.batch_size
            or time.perf_counter() - self.last > COMMIT_EVERY_S
        ):
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        written, refused = commit_batch(self.run.catalog, self.pending, self.write)
        for item, result in written:
            self.done(item, result)
        for item, reason in refused:
            self.refused(item, reason)
        self.committed += len(self.pending)
        self.pending, self.last = [], time.perf_counter()


def _bar(total: int, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(
        total=total, desc=desc, unit="track", disable=not enabled, file=sys.stderr, leave=True
    )


def _timed(run: Run, stage: str, tracks: int, started: float, audio: float) -> None:
    run.summary.stages[stage] = {
        "tracks": tracks,
        "wall_s": round(time.perf_counter() - started, 3),
        "audio_s": round(audio, 3),
    }


# ---------------------------------------------------------------- 1. facts


@dataclass
class FactsJob:
    path: str  # as open() takes it
    key: str  # as Track.path stores it
    content_hash: str
    size: int
    track_id: int | None  # set when the file at this path changed


def facts_stage(
    run: Run, pool: WorkerPool, jobs: Sequence[FactsJob], overrides: Overrides | None
) -> None:
    """Stage 1: a track row with names, file tags and declared duration per new/changed file."""
    started = time.perf_counter()
    by_path = {job.path: job for job in jobs}
    run.note.update(stage="reading tags", files=len(jobs), analysed=0)

    def write(session: Session, item: tuple[FactsJob, Any]):
        job, facts = item
        return write_facts(
            session, facts, job.key, job.content_hash, job.size, job.track_id, overrides
        )

    def done(item: tuple[FactsJob, Any], track: Any) -> None:
        job = item[0]
        how = "updated" if job.track_id else "added"
        setattr(run.summary, how, getattr(run.summary, how) + 1)
        run.fresh[track.id] = how
        run.sizes[track.id] = job.size
        run.summary.track_ids.append(track.id)

    def refused(item: tuple[FactsJob, Any], reason: str) -> None:
        run.summary.skipped.append((printable(item[0].path), reason))

    batches = Batches(run, write, done, refused)
    with _bar(len(jobs), run.progress and len(jobs) > 50, "reading tags") as bar:
        for path, facts in pool.map_unordered(facts_job, list(by_path)):
            bar.update(1)
            run.note.update(analysed=run.note.state["analysed"] + 1)
            if facts.error:
                run.summary.skipped.append((printable(path), facts.error))
            else:
                batches.add((by_path[path], facts))
        batches.flush()
    _timed(run, "facts", batches.committed, started, 0.0)


# ---------------------------------------------------------------- 2. embedding


def embedding_stage(
    run: Run | None,
    catalog: Catalog,
    embedder: Any,
    todo: Sequence[tuple[int, str]],
    *,
    batch_size: int,
    progress: bool,
    drop_failed: bool = True,
    pool: WorkerPool | None = None,
) -> int:
    """Stage 2: embed ``todo`` ((track id, path) pairs); returns how many were embedded.

    On a CPU with a worker ``pool``, each worker embeds with its own copy of the model and
    one thread (``embed_job``): 2 threads in one process cost ~15% more CPU per patch
    with ONNX Runtime and ~55% more with torch. On a GPU this process embeds.
    ``drop_failed``: a file that does not decode to usable audio loses its track (in an
    ingest); without it (``reindex``) such a track keeps what it had.
    """
    started = time.perf_counter()
    model_id = str(embedder.model_id)
    if run is not None:
        run.note.update(stage="embedding", files=len(todo), analysed=0)
    count = 0

    def write(session: Session, item: tuple[int, str, Embedded]) -> None:
        track_id, _path, result = item
        if result.vector is None:
            drop_track(session, track_id)
        else:
            write_embedding(
                session, track_id, model_id, result.vector, result.model_tags, result.duration
            )

    def done(item: tuple[int, str, Embedded], _result: Any) -> None:
        nonlocal count
        track_id, path, result = item
        if result.vector is None:
            if run is not None:
                run.dropped(track_id, path, result.error or "does not decode")
            return
        count += 1
        if run is not None:
            run.summary.embedded += 1
            run.audio[track_id] = result.duration
            run.warn(path, result.warning)
            run.note.update(force=True, committed=run.note.state.get("committed", 0) + 1)

    def refused(item: tuple[int, str, Embedded], reason: str) -> None:
        if run is not None:
            run.summary.skipped.append((printable(item[1]), f"not embedded: {reason}"))

    own = run or Run(catalog, IngestSummary(), _NoNote(), batch_size, progress)  # type: ignore[arg-type]
    batches = Batches(own, write, done, refused)
    ids = {path: track_id for track_id, path in todo}
    with _bar(len(todo), progress, "embedding") as bar:
        for path, result in _embeddings(embedder, [p for _, p in todo], pool):
            bar.update(1)
            if run is not None:
                run.note.update(analysed=run.note.state["analysed"] + 1)
            if result.vector is None and not drop_failed:
                continue  # file gone or undecodable: the track keeps what it had
            batches.add((ids[path], path, result))
        batches.flush()
    if run is not None:
        audio = sum(run.audio.get(t, 0.0) for t, _ in todo)
        _timed(run, "embedding", count, started, audio)
    return count


def _embeddings(embedder: Any, paths: list[str], pool: WorkerPool | None):
    """(path, Embedded) for every path: in the worker pool when each worker can run its own
    copy of the model on the CPU, else here."""
    if _replicable(embedder) and pool is not None and pool.workers > 1 and len(paths) > 1:
        checkpoint = str(embedder.checkpoint) if embedder.checkpoint is not None else None
        jobs = [(checkpoint, str(embedder.model_id), p) for p in paths]
        for _job, (path, result) in pool.map_unordered(embed_job, jobs):
            yield path, embed_file(embedder, path) if result.elsewhere else result
        return
    for path in paths:
        yield path, embed_file(embedder, path)


def _replicable(embedder: Any) -> bool:
    """A ``musicbert.embedder.Embedder`` on the CPU, which a worker can load again."""
    from musicbert.embedder import Embedder

    return type(embedder) is Embedder and embedder.device.type == "cpu"


class _NoNote:
    """The progress note of a re-embedding outside an ingest: nothing to write."""

    state: dict[str, Any] = {}

    def update(self, force: bool = False, **changes: Any) -> None:
        del force, changes


# ---------------------------------------------------------------- 3. analysis


def analysis_stage(
    run: Run, pool: WorkerPool, todo: Sequence[tuple[int, str]], *, completes: bool
) -> None:
    """Stage 3: loudness, tempo and key of ``todo`` ((track id, path) pairs) in the worker
    pool. ``completes``: this stage makes tracks ready (no embedding stage ran)."""
    started = time.perf_counter()
    ids = {path: track_id for track_id, path in todo}
    run.note.update(stage="analysing", files=len(todo), analysed=0)
    audio = 0.0

    def write(session: Session, item: tuple[int, Any]) -> None:
        track_id, result = item
        if result.error:
            drop_track(session, track_id)
        else:
            write_analysis(session, track_id, result.analysis)

    def done(item: tuple[int, Any], _result: Any) -> None:
        nonlocal audio
        track_id, result = item
        if result.error:
            run.dropped(track_id, result.path, result.error)
            return
        run.summary.analysed += 1
        seconds = float(result.analysis["duration"])
        if completes:  # else the embedding stage counted this track's audio
            run.audio.setdefault(track_id, seconds)
        audio += seconds
        run.warn(result.path, result.warning)
        if completes:
            run.note.update(force=True, committed=run.note.state.get("committed", 0) + 1)

    def refused(item: tuple[int, Any], reason: str) -> None:
        run.summary.skipped.append((printable(item[1].path), reason))

    batches = Batches(run, write, done, refused)
    with _bar(len(todo), run.progress, "analysing") as bar:
        for path, result in pool.map_unordered(analyse_job, list(ids)):
            bar.update(1)
            run.note.update(analysed=run.note.state["analysed"] + 1)
            batches.add((ids[path], result))
        batches.flush()
    _timed(run, "analysis", run.summary.analysed, started, audio)


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
