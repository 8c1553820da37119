"""The worker side of ingest: hashing, reading the facts of and analysing files in a
pool of processes.

Workers run in a forkserver pool (torch in the parent is never forked). Each one
watches the ingest process that started it and exits as soon as it is gone, however
it died (kill -9 included), so a killed run leaves no workers behind. A file that
crashes its worker is retried alone and reported, not fatal to the run.
"""

from __future__ import annotations

import ctypes
import hashlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from catalog.tags import FileTags, display_name, read_tags
from musicbert.errors import MusicBertError

HASH_CHUNK = 1 << 20
#: How worker processes start: "forkserver" never forks a parent that holds torch
#: threads; benchmarks use "spawn" so that workers are direct children (rusage counts them).
START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
#: Seconds between a worker's checks that the ingest process that started it is alive.
OWNER_POLL_S = 0.25
#: One model patch: ``musicbert.logmel`` PATCH_FRAMES * HOP / SR (187 * 256 / 16 kHz).
#: Not imported from there: that module brings torch into every worker process.
PATCH_SECONDS = 187 * 256 / 16_000


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def hash_job(path: str) -> tuple[str, str | None, int, str | None]:
    try:
        return path, file_sha256(path), os.path.getsize(path), None
    except OSError as exc:
        return path, None, 0, f"cannot read ({exc.strerror or exc})"


def one_line_reason(path: str, exc: BaseException) -> str:
    """An exception as the one-line reason the summary lists (without the file's name)."""
    if isinstance(exc, MemoryError):
        return "ran out of memory while decoding"
    if not isinstance(exc, MusicBertError):  # a decoder bug must not end the run
        return f"unexpected {type(exc).__name__}: {str(exc)[:160]}"
    message, name = str(exc), display_name(path)
    return message[len(name) + 2 :] if message.startswith(name + ": ") else message


@dataclass
class Facts:
    """The cheap facts of one file (stage 1): its tags and what its header declares."""

    path: str
    tags: FileTags | None = None
    sample_rate: int = 0
    channels: int = 0
    duration: float = 0.0  # declared by the container; the decoded length replaces it
    error: str | None = None


def facts_job(path: str) -> Facts:
    """Tags (mutagen) and the header (no decoding). Never raises."""
    from musicbert.audio_io import probe

    try:
        info = probe(path)
        declared = info.frames if 0 < info.frames < (1 << 40) else 0
        return Facts(
            path, read_tags(path), info.samplerate, info.channels, declared / info.samplerate
        )
    except Exception as exc:
        return Facts(path, error=one_line_reason(path, exc))


@dataclass
class Analysed:
    """A worker's answer for one file: what the analysis stage writes."""

    path: str
    analysis: dict | None = None
    error: str | None = None
    warning: str | None = None  # analysed, but not all of the file decoded (one line)


def analyse_job(path: str) -> Analysed:
    """Decode + analysis of one file. Never raises: errors become a one-line reason.

    A damaged file (cut short, mis-declared length, decoding that fails part-way) keeps
    what decodes, with a warning; with less than one patch left it is not worth a track.
    """
    from catalog.analysis import SR, analyse_blocks
    from musicbert.audio_io import DecodeReport, stream

    try:
        report = DecodeReport()
        analysis = analyse_blocks(stream(path, SR, block_seconds=30.0, report=report))
        error = usable_audio(analysis.duration, report.problem)
        if error:
            return Analysed(path, error=error)
        return Analysed(path, analysis.to_dict(), warning=report.problem)
    except Exception as exc:
        return Analysed(path, error=one_line_reason(path, exc))


def usable_audio(decoded_seconds: float, problem: str | None) -> str | None:
    """Why a decode is not worth a track (None when it is): no samples at all, or a
    damaged file of which less than one model patch decodes."""
    if decoded_seconds <= 0:
        return "decodes to no samples"
    if problem and decoded_seconds < PATCH_SECONDS:
        return f"{problem}; too little audio left to use"
    return None


@dataclass
class Embedded:
    """One track's embedding, model tags and decoded length, or why it has none."""

    vector: Any = None  # (dim,) float32 numpy array
    model_tags: list[tuple[str, str, float]] = field(default_factory=list)
    duration: float = 0.0
    warning: str | None = None
    error: str | None = None
    elsewhere: bool = False  # a worker could not run this model: embed it in the parent


def embed_file(embedder: Any, path: str) -> Embedded:
    """Decode and embed one file; a track shorter than one patch gets no model tags (musicnn
    would read mostly zero padding). A damaged file is embedded from what decodes."""
    import numpy as np

    from catalog.ingest_write import select_model_tags
    from musicbert.audio_io import DecodeReport, stream

    report = DecodeReport()
    try:
        description = embedder.describe_stream(stream(path, report=report))
    except OSError as exc:
        return Embedded(error=f"cannot read ({exc.strerror or exc})")
    except MusicBertError as exc:  # undecodable audio (a bug in the model is not caught)
        return Embedded(error=one_line_reason(path, exc))
    duration = float(getattr(description, "duration", 0.0) or 0.0)
    error = usable_audio(duration, report.problem)
    if error:
        return Embedded(error=error)
    tags = getattr(description, "tags", []) or []
    if duration < PATCH_SECONDS:
        tags = []
    vector = np.asarray(description.embedding, dtype=np.float32)
    return Embedded(vector, select_model_tags(tags), duration, report.problem)


#: Each worker's own copy of the model, by checkpoint (loaded on its first track).
_EMBEDDERS: dict[str | None, Any] = {}


def embed_job(job: tuple[str | None, str, str]) -> tuple[str, Embedded]:
    """In a worker: embed one file with this process's copy of the model (checkpoint,
    model id, path), one thread per worker. ``elsewhere`` when the copy cannot be loaded
    or is not the parent's model (same id), so the parent embeds the file itself."""
    checkpoint, model_id, path = job
    embedder = _EMBEDDERS.get(checkpoint)
    if embedder is None:
        import warnings

        import torch

        torch.set_num_threads(1)
        from musicbert.embedder import Embedder

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                embedder = Embedder.load(checkpoint, device="cpu")
        except Exception:
            return path, Embedded(elsewhere=True)
        _EMBEDDERS[checkpoint] = embedder
    if str(embedder.model_id) != model_id:
        return path, Embedded(elsewhere=True)
    return path, embed_file(embedder, path)


def _stat_fields(pid: int) -> list[bytes] | None:
    """/proc/PID/stat after the command name: [state, ppid, ..., starttime at 19, ...]."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    return data[data.rindex(b")") + 2 :].split()


def process_identity(pid: int) -> bytes | None:
    """A process's start time (clock ticks since boot) on Linux: pid + this never repeat."""
    fields = _stat_fields(pid)
    return fields[19] if fields and len(fields) > 19 else None


def process_alive(pid: int, identity: bytes | None) -> bool:
    """Whether ``pid`` is still the (running, not zombie) process recorded as ``identity``."""
    if identity is not None:
        fields = _stat_fields(pid)
        if not fields or len(fields) <= 19:
            return False
        return fields[0] not in (b"Z", b"X", b"x") and fields[19] == identity
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _exit_with_owner(owner: int, identity: bytes | None) -> None:
    """In a worker: end this process as soon as the ingest process that owns it is gone.

    A killed ingest (kill -9, out-of-memory killer) runs no clean-up, and its workers,
    waiting on a queue that no one will ever write to, would live on; with them the
    forkserver and the resource tracker, which wait for their last client. A daemon
    thread polls the owner (its pid and start time, so a recycled pid does not fool
    it); where the owner is also the direct parent (``spawn``), Linux's parent-death
    signal ends the worker at once.
    """
    if sys.platform.startswith("linux") and os.getppid() == owner:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if not process_alive(owner, identity):
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(OWNER_POLL_S)
            if not process_alive(owner, identity):
                os._exit(1)

    threading.Thread(target=watch, name="owner-watch", daemon=True).start()


def _worker_init(owner: int | None = None, identity: bytes | None = None) -> None:
    # One BLAS/FFT thread per worker: the parallelism is across files.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    if owner is not None:
        _exit_with_owner(owner, identity)


def _pool_args() -> dict[str, Any]:
    """ProcessPoolExecutor arguments shared by every pool of a run."""
    owner = os.getpid()
    return {
        "mp_context": multiprocessing.get_context(START_METHOD),
        "initializer": _worker_init,
        "initargs": (owner, process_identity(owner)),
    }


class WorkerPool:
    """A process pool that is only started when there is enough work to share."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)

    def start(self) -> ProcessPoolExecutor:
        if self.executor is None:
            self.executor = ProcessPoolExecutor(self.workers, **_pool_args())
        return self.executor

    def restart(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = None

    def map_unordered(self, fn: Callable, items: Sequence) -> Iterable[tuple[Any, Any]]:
        """Yield (item, result) as results arrive; a crashed worker fails only its own item."""
        if self.workers <= 1 or len(items) <= 1:
            for item in items:
                yield item, fn(item)
            return
        executor = self.start()
        futures: dict[Future, Any] = {executor.submit(fn, item): item for item in items}
        retry: list[Any] = []
        for future in as_completed(futures):
            try:
                result = future.result()
            except BrokenProcessPool:
                retry.append(futures[future])
                continue
            yield futures[future], result
        if retry:
            # A worker died (out of memory, or a crash in a native decoder): every
            # unfinished item is retried alone so that only the culprit fails.
            self.restart()
            for item in retry:
                yield item, _isolated(fn, item)


def _isolated(fn: Callable, item: Any) -> Any:
    with ProcessPoolExecutor(1, **_pool_args()) as executor:
        try:
            return executor.submit(fn, item).result()
        except BrokenProcessPool:
            return _crashed(fn, item)


def _crashed(fn: Callable, item: Any) -> Any:
    if fn is analyse_job:
        return Analysed(item, error="the decoder crashed on this file")
    if fn is facts_job:
        return Facts(item, error="the process reading this file crashed")
    if fn is embed_job:
        return item[2], Embedded(error="the decoder crashed on this file")
    return item, None, 0, "the process reading this file crashed"
