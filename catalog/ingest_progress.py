"""The progress file of a running ingest: what other processes read to say "still growing".

An ingest writes ``catalog.ingest.json`` beside the catalog (counts, rate, its pid)
every half second; a search or the chat in another process reads it to tell the
person that the library is still being built and how far along it is.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog.db import Catalog
from catalog.ingest_workers import process_alive, process_identity

#: Seconds between rewrites of the progress file (stage changes are written at once).
PROGRESS_EVERY_S = 0.5


def progress_file(catalog: Catalog) -> Path | None:
    """Where a running ingest says how far it is: ``X/name.ingest.json`` beside a SQLite
    file ``X/name.db`` (``MUSICBERT_HOME/<hash>.ingest.json`` for other URLs); None for an
    in-memory database."""
    from catalog.vector_index import index_dir

    folder = index_dir(catalog)
    return None if folder is None else folder.parent.parent / f"{folder.name}.ingest.json"


class IngestProgress:
    """The progress file of one ingest: written as it goes, removed when it ends.

    Readers (a search that finds the catalog empty) learn that an ingest is running and
    how far it is. The file names the process (pid + start time), so one left behind by
    a killed ingest is recognised as stale and ignored. Writing it never fails an ingest.
    """

    def __init__(self, catalog: Catalog):
        self.path = progress_file(catalog)
        self.state: dict[str, Any] = {
            "pid": os.getpid(),
            "identity": (process_identity(os.getpid()) or b"").decode(),
            "started": time.time(),
            "stage": "scanning",
            "files": 0,
            "analysed": 0,
            "committed": 0,
        }
        self._written = 0.0

    def update(self, force: bool = False, **changes: Any) -> None:
        stage_changed = "stage" in changes and changes["stage"] != self.state["stage"]
        self.state.update(changes)
        if changes.get("committed") and "first_commit_at" not in self.state:
            self.state["first_commit_at"] = time.time()  # the ETA counts from here
        now = time.monotonic()
        if self.path is None or not (
            force or stage_changed or now - self._written >= PROGRESS_EVERY_S
        ):
            return
        self._written = now
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        try:
            tmp.write_text(json.dumps({**self.state, "updated": time.time()}))
            os.replace(tmp, self.path)
        except OSError:
            pass

    def close(self) -> None:
        if self.path is not None:
            try:
                current = json.loads(self.path.read_text())
                if current.get("pid") == os.getpid():
                    self.path.unlink()
            except (OSError, ValueError):
                pass

    def __enter__(self) -> IngestProgress:
        self.update(force=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def running_ingest(catalog: Catalog) -> dict[str, Any] | None:
    """What the progress file of a live ingest of this catalog says; None when none runs."""
    path = progress_file(catalog)
    try:
        state = json.loads(path.read_text()) if path is not None else None
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not isinstance(state.get("pid"), int):
        return None
    identity = str(state.get("identity") or "").encode() or None
    return state if process_alive(state["pid"], identity) else None


def describe_ingest(state: dict[str, Any]) -> str:
    """ "an ingest is running (pid 12, for 8 s): analysing, 3 of 40 files, 0 tracks saved"."""
    seconds = max(0, round(time.time() - float(state.get("started") or time.time())))
    files, analysed = int(state.get("files") or 0), int(state.get("analysed") or 0)
    stage = str(state.get("stage") or "starting")
    how_far = f"{stage}, {analysed} of {files} files" if files else stage
    committed = int(state.get("committed") or 0)
    return (
        f"an ingest is running (pid {state.get('pid')}, for {seconds} s): {how_far}, "
        f"{committed} track{'s' if committed != 1 else ''} ready so far"
    )


def ready_count(catalog: Catalog, model_id: str | None) -> int:
    """Tracks a search can use: those with an embedding from ``model_id``, or, for an
    ingest without an embedder (``model_id`` None), those whose analysis is in."""
    from sqlalchemy import func, select
    from sqlalchemy.exc import SQLAlchemyError

    from catalog.models import AudioFeatures, Embedding

    if model_id is None:
        query = select(func.count()).select_from(AudioFeatures)
    else:
        query = select(func.count(func.distinct(Embedding.track_id))).where(
            Embedding.model_id == model_id
        )
    try:
        with catalog.session() as session:
            return int(session.scalar(query) or 0)
    except SQLAlchemyError:
        return 0


def track_count(catalog: Catalog) -> int:
    """How many tracks the catalog holds (0 when it cannot be read yet)."""
    from sqlalchemy import func, select
    from sqlalchemy.exc import SQLAlchemyError

    from catalog.models import Track

    try:
        with catalog.session() as session:
            return int(session.scalar(select(func.count(Track.id))) or 0)
    except SQLAlchemyError:
        return 0


@dataclass(frozen=True)
class Growth:
    """A library that is still being built: how much of it can be searched already."""

    ready: int  # tracks a search can use now (embedded; analysed when nothing embeds)
    expected: int  # tracks it will hold when the running ingest is done
    stage: str
    eta_s: float | None  # seconds left, from the rate since the first commit; None: unknown

    def ready_text(self) -> str:
        """ "12 of 107 tracks ready" ("12 tracks ready so far" before the total is known)."""
        if not self.expected:
            return f"{self.ready} track{'s' if self.ready != 1 else ''} ready so far"
        return f"{self.ready} of {self.expected} track{'s' if self.expected != 1 else ''} ready"

    def eta_text(self) -> str:
        if self.eta_s is None:
            return ""
        if self.eta_s < 90:
            return "about a minute left"
        return f"about {round(self.eta_s / 60)} min left"

    def toolbar(self) -> str:
        """ "library: 12 of 107 tracks ready (analysing), about 6 min left"."""
        eta = self.eta_text()
        return f"library: {self.ready_text()} ({self.stage})" + (f", {eta}" if eta else "")


def library_growth(catalog: Catalog, now: float | None = None) -> Growth | None:
    """How far the running ingest of this catalog is, as a person reads it; None when no
    ingest runs (the library is as complete as it will get)."""
    state = running_ingest(catalog)
    if state is None:
        return None
    now = time.time() if now is None else now
    ready = ready_count(catalog, state.get("model_id"))
    expected = int(state.get("expected") or 0)
    expected = max(expected, ready) if expected else 0  # 0: not known yet (still scanning)
    eta = None
    added = ready - int(state.get("ready_at_start") or 0)
    first = state.get("first_commit_at")
    if first is not None and added >= 3 and now > float(first):
        rate = (added - 1) / (now - float(first))  # tracks per second since the first commit
        eta = (expected - ready) / rate if rate > 0 and expected > ready else None
    return Growth(ready, expected, str(state.get("stage") or "starting"), eta)
