"""The worker side of ingest: hashing and analysing files in a pool of processes.

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
from dataclasses import dataclass
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


@dataclass
class Analysed:
    """A worker's answer for one file: everything needed to write its rows."""

    path: str
    tags: FileTags | None = None
    analysis: dict | None = None
    sample_rate: int = 0
    channels: int = 0
    error: str | None = None
    warning: str | None = None  # ingested, but not all of the file decoded (one line)


def analyse_job(path: str) -> Analysed:
    """Tags + decode + analysis of one file. Never raises: errors become a one-line reason.

    A damaged file (cut short, mis-declared length, decoding that fails part-way) keeps
    what decodes, with a warning; with less than one patch left it is not worth a track.
    """
    from catalog.analysis import SR, analyse_blocks
    from musicbert.audio_io import DecodeReport, probe, stream

    try:
        info = probe(path)
        report = DecodeReport()
        analysis = analyse_blocks(stream(path, SR, block_seconds=30.0, report=report))
        if analysis.duration <= 0:
            return Analysed(path, error="decodes to no samples")
        if report.problem and analysis.duration < PATCH_SECONDS:
            return Analysed(path, error=f"{report.problem}; too little audio left to use")
        tags = read_tags(path)
        return Analysed(
            path,
            tags,
            analysis.to_dict(),
            info.samplerate,
            info.channels,
            warning=report.problem,
        )
    except MusicBertError as exc:
        message = str(exc)
        name = display_name(path)
        if message.startswith(name + ": "):
            message = message[len(name) + 2 :]
        return Analysed(path, error=message)
    except MemoryError:
        return Analysed(path, error="ran out of memory while decoding")
    except Exception as exc:  # a decoder bug must not end the run; say what happened
        return Analysed(path, error=f"unexpected {type(exc).__name__}: {str(exc)[:160]}")


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
    return item, None, 0, "the process reading this file crashed"
