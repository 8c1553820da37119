"""The library grows behind the chat: the demo build runs in a process of its own.

``start_demo_build`` starts ``musicbert demo`` detached from the terminal (its own
session, output to a log file beside the catalog), so the chat opens at once and
leaving it leaves the build running; a build that was killed is resumed by the next
start (``catalog.demo`` reuses cached renders and committed tracks). One build per
catalog at a time: the build holds ``demo_lock`` for its whole life.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from catalog.db import Catalog
from catalog.ingest_progress import progress_file, running_ingest

#: How much lower the background build's CPU priority is than the chat's (nice 10: the
#: chat answers at once however busy the build keeps the cores).
BUILD_NICENESS = 10


#: The longest the chat waits for a build it started to say it is running.
STARTUP_WAIT_S = 15.0


def _sibling(catalog: Catalog, suffix: str) -> Path | None:
    progress = progress_file(catalog)
    return (
        None
        if progress is None
        else progress.with_name(progress.name.replace(".ingest.json", suffix))
    )


def build_log(catalog: Catalog) -> Path | None:
    """Where a background build writes its output (``X/name.demo.log``)."""
    return _sibling(catalog, ".demo.log")


@contextmanager
def demo_lock(catalog: Catalog) -> Iterator[bool]:
    """Hold the demo-build lock of this catalog while the block runs; yields False (and
    holds nothing) when another process holds it. An in-memory catalog always gets it."""
    path = _sibling(catalog, ".demo.lock")
    if path is None:
        yield True
        return
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_running(catalog: Catalog) -> bool:
    """A demo build (or any ingest) of this catalog is running in some process."""
    if running_ingest(catalog) is not None:
        return True
    with demo_lock(catalog) as free:
        return not free


def start_demo_build(
    catalog: Catalog, db_url: str | None = None, checkpoint: str | None = None
) -> Path | None:
    """Start ``musicbert demo`` in the background unless a build already runs; returns its
    log file, or None when one was running already. ``catalog`` must be open (its schema
    created) before the build starts, so the two processes never migrate it together."""
    if build_running(catalog):
        return None
    log = build_log(catalog) or Path(os.devnull)
    command = [sys.executable, "-m", "assistant.cli"]
    if db_url:
        command += ["--db", db_url]
    if checkpoint:
        command += ["--checkpoint", checkpoint]
    command += ["demo"]
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the chat or closing it does not stop it
            close_fds=True,
        )
    try:  # the chat comes first: the build (and the workers it starts) takes what is left
        os.setpriority(os.PRIO_PROCESS, process.pid, BUILD_NICENESS)
    except OSError:
        pass
    # Until the build has written its progress file, a search would call the library
    # empty; it does so within a second or two of starting (before it loads the model).
    deadline = time.monotonic() + STARTUP_WAIT_S
    while running_ingest(catalog) is None and process.poll() is None:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return log
