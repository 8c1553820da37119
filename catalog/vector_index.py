"""A FAISS index saved beside the SQL catalog and kept in step with it.

(On PostgreSQL the database holds the vectors itself, with pgvector: ``open`` hands back
a ``catalog.pgvector_index.PgVectorIndex`` and nothing here is used.)

The SQL ``embeddings`` table is the truth; the index (``catalog.faiss_index.FaissIndex``,
which this module adds the bookkeeping to) is a fast, disposable copy of it. This
module is that bookkeeping: where the index file lives, how it is saved and loaded,
and how it follows SQL.

The index is saved beside the database with a JSON sidecar (model id, dim, kind,
file checksum, a fingerprint of the catalog's embeddings). At open, a missing,
stale (another model), corrupt or out-of-step index is repaired from the stored
vectors, and ``sync`` says what it did; a damaged or deleted index is said in words
a person reads once ("rebuilt the search index: it was damaged (...)", see
``REPAIRED``), which every command passes on. Files are replaced atomically (write a
temporary file, fsync, ``os.replace``) so a process killed mid-update leaves
either the old or the new index, never a torn one. Where the index folder cannot
be written (a read-only library), the index lives in memory for the run.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import faiss
import numpy as np

from catalog.db import Catalog
from catalog.faiss_index import FaissIndex, VectorSource
from catalog.index_config import IndexConfig
from catalog.vectors import CatalogVectors, Fingerprint, fingerprint
from musicbert.errors import ConfigError
from musicbert.paths import home_dir

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
#: How the message of a repaired (damaged or deleted) index begins.
REPAIRED = "rebuilt the search index: it was"
#: ``_load`` reasons that mean the saved index was damaged, not merely stale.
_DAMAGE = ("unreadable", "corrupt", "damaged")


# --------------------------------------------------------------------------- where it lives


def index_dir(catalog: Catalog) -> Path | None:
    """Where a catalog's indexes live; None for an in-memory database (nothing to persist).

    A SQLite file ``X/name.db`` keeps them in ``X/index/name/``; any other URL in
    ``MUSICBERT_HOME/index/<hash of the URL>/`` so two databases never share one.
    """
    url = catalog.engine.url
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if not database or database == ":memory:" or "mode=memory" in str(url):
            return None
        db_path = Path(database).expanduser().resolve()
        return db_path.parent / "index" / db_path.stem
    key = hashlib.sha256(url.render_as_string(hide_password=True).encode()).hexdigest()[:16]
    return home_dir() / "index" / key


def _check_folder(folder: Path) -> None:
    """A clear error when a file stands where the index folder (or one above it) must be."""
    for parent in (folder, *folder.parents):
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(
                    f"{parent} is a file, but the search index is kept in the folder "
                    f"{folder}; move or delete that file (the index is rebuilt from the catalog)"
                )
            return


def index_filename(model_id: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id).strip("._")[:80] or "model"
    return f"{slug}-{hashlib.sha1(model_id.encode()).hexdigest()[:8]}.faiss"


def _sha256(buffer) -> str:
    return "sha256:" + hashlib.sha256(memoryview(buffer)).hexdigest()


def _write_atomic(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(memoryview(data))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class _ChangeProbe:
    """A private SQLite connection whose ``PRAGMA data_version`` moves on every commit
    made by any other connection (this process's pool or another process)."""

    def __init__(self, path: str, uri: bool = False):
        self._conn = sqlite3.connect(path, uri=uri, check_same_thread=False, timeout=30)
        self._lock = threading.Lock()
        self._version: int | None = None

    @classmethod
    def for_catalog(cls, catalog: Catalog) -> _ChangeProbe | None:
        url = catalog.engine.url
        if url.get_backend_name() != "sqlite" or index_dir(catalog) is None:
            return None
        try:
            uri = getattr(catalog, "sqlite_uri", None)
            if uri:  # a read-only catalog: the probe must read it the same way
                return cls(uri, uri=True)
            return cls(str(Path(url.database).expanduser()))
        except sqlite3.Error:
            return None

    def changed(self) -> bool:
        with self._lock:
            try:
                version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            except sqlite3.Error:
                return True  # cannot tell: assume it changed (the fingerprint decides)
            seen, self._version = self._version, version
            return seen is None or version != seen

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class VectorIndex(FaissIndex):
    """A ``FaissIndex`` over the embeddings of one model in a catalog, saved and in step."""

    def __init__(
        self,
        model_id: str,
        dim: int,
        config: IndexConfig | None = None,
        *,
        catalog: Catalog | None = None,
        path: Path | None = None,
        vector_source: VectorSource | None = None,
    ):
        stored = CatalogVectors(catalog, model_id, dim) if catalog is not None else None
        super().__init__(model_id, dim, config, vector_source=vector_source or stored)
        self.catalog, self.path = catalog, path
        self._stored = stored
        self.fingerprint: str | None = None
        self.max_created: str | None = None
        self.message = ""
        self.checked_at = 0.0
        self._probe = _ChangeProbe.for_catalog(catalog) if catalog is not None else None

    @classmethod
    def open(
        cls,
        catalog: Catalog,
        model_id: str,
        dim: int,
        *,
        config: IndexConfig | None = None,
        path: Path | None = None,
    ) -> VectorIndex:
        """The catalog's index for ``model_id``, loaded or repaired; ``.message`` says which.

        A PostgreSQL catalog keeps its vectors itself: without an explicit ``path`` its
        index is a ``catalog.pgvector_index.PgVectorIndex`` and no FAISS file is used.
        """
        if path is None and catalog.engine.dialect.name == "postgresql":
            from catalog.pgvector_index import PgVectorIndex

            return PgVectorIndex.open(catalog, model_id, dim, config=config)  # type: ignore[return-value]
        if path is None:
            folder = index_dir(catalog)
            path = folder / index_filename(model_id) if folder is not None else None
        if path is not None:
            _check_folder(path.parent)
        index = cls(model_id, dim, config, catalog=catalog, path=path)
        index.message = index.sync()
        return index

    # ----------------------------------------------------------------- persistence

    @property
    def sidecar_path(self) -> Path | None:
        return self.path.with_suffix(".json") if self.path else None

    @property
    def writable(self) -> bool:
        """Whether the index can be saved (False in memory and in a read-only folder)."""
        if self.path is None:
            return False
        folder = self.path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        return folder.is_dir() and os.access(folder, os.W_OK)

    @contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        """Serialise writers across processes; readers never see a half-written pair."""
        if self.path is None:
            yield
            return
        if not exclusive and not self.writable:
            yield  # a read-only folder: no one can be writing it through this lock
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def save(self) -> None:
        """Write the index then its sidecar, each atomically (no-op when not persisted,
        or when the folder is read-only: the index then lives in memory for this run)."""
        if self.path is None or not self.writable:
            return
        data = faiss.serialize_index(self._index)
        sidecar = {
            "format": FORMAT_VERSION,
            "model_id": self.model_id,
            "dim": self.dim,
            "kind": self.kind,
            "count": self.count,
            "entries": int(self._ids.size),
            "checksum": _sha256(data),
            "fingerprint": self.fingerprint,
            "max_created": self.max_created,
            "config": asdict(self.config),
            "saved_at": time.time(),
        }
        with self._locked(exclusive=True):
            for leftover in self.path.parent.glob(f".{self.path.stem}.*.tmp"):
                leftover.unlink(missing_ok=True)  # from a writer killed mid-write
            _write_atomic(self.path, data)
            _write_atomic(self.sidecar_path, json.dumps(sidecar, indent=1).encode())

    def _load(self) -> tuple[dict | None, str]:
        """Read the saved index; (sidecar, "") on success, (None, why not) otherwise."""
        if self.path is None:
            return None, "not saved (in-memory database)"
        saved_before = self.path.with_suffix(".lock").exists()  # (taking the lock makes it)
        with self._locked(exclusive=False):
            if not self.path.exists():
                if self.sidecar_path.exists():
                    return None, "damaged (the index file is missing)"
                if saved_before:
                    return None, "deleted"  # it was here before: its lock file remains
                return None, "missing"
            try:
                sidecar = json.loads(self.sidecar_path.read_text())
                data = np.fromfile(self.path, dtype=np.uint8)
            except (OSError, ValueError) as exc:
                return None, f"unreadable ({exc.__class__.__name__})"
        if sidecar.get("format") != FORMAT_VERSION:
            return None, f"in an older format ({sidecar.get('format')})"
        if sidecar.get("model_id") != self.model_id or sidecar.get("dim") != self.dim:
            return None, (
                f"built by another model ({sidecar.get('model_id')!r}, dim {sidecar.get('dim')})"
            )
        if sidecar.get("checksum") != _sha256(data):
            return None, "corrupt (checksum mismatch)"
        try:
            index = faiss.deserialize_index(data)
        except RuntimeError:
            return None, "corrupt (faiss cannot read it)"
        if index.d != self.dim or not hasattr(index, "id_map"):
            return None, "corrupt (unexpected structure)"
        self._index, self.kind = index, sidecar["kind"]
        if self.kind == "hnsw":
            faiss.downcast_index(index.index).hnsw.efSearch = self.config.ef_search
        self._refresh_ids()
        self.fingerprint = sidecar.get("fingerprint")
        self.max_created = sidecar.get("max_created")
        return sidecar, ""

    # ----------------------------------------------------------------- keeping in step

    def sync(self) -> str:
        """Bring the index in step with the catalog and say what was done.

        Cheap when nothing changed (one aggregate query). Otherwise the saved file is
        tried, then the difference with SQL is applied (new, deleted and re-embedded
        tracks), and anything that cannot be trusted is rebuilt from the stored vectors.
        """
        if self.catalog is None:
            return "in-memory index (no catalog to follow)"
        if self._probe is not None:
            self._probe.changed()  # note the version first: a commit from now on is seen
        current = fingerprint(self.catalog, self.model_id, self.dim)
        self.checked_at = time.monotonic()
        if self.fingerprint == current.token() and self.config.kind_fits(self.kind, self.count):
            return f"index up to date ({self.count} tracks, {self.kind})"
        sidecar, why = self._load()
        if sidecar is not None and not self.config.kind_fits(self.kind, current.count):
            sidecar, why = None, f"a {self.kind} index, unsuited to {current.count} tracks"
        if sidecar is None:
            if why.startswith(_DAMAGE) or why == "deleted":
                return self._rebuild(current, why, repaired=True)
            return self._rebuild(current, f"the index was {why}")
        if self.fingerprint == current.token():
            return f"loaded the {self.kind} index ({self.count} tracks)"
        return self._catch_up(current)

    def _rebuild(self, current: Fingerprint, why: str, *, repaired: bool = False) -> str:
        ids, vectors = self._stored.all()
        self._build(ids, vectors)
        self.fingerprint, self.max_created = current.token(), current.max_created or None
        self.save()
        read_only = self.path is not None and not self.writable
        memory = "; kept in memory, the folder is read-only" if read_only else ""
        if repaired:  # said to the person, in words, once (the next open loads the new one)
            state = "deleted" if why == "deleted" else "damaged"
            detail = "" if why in ("deleted", "damaged") else why.replace(" (", ": ", 1)
            detail = detail.removeprefix("damaged: ").rstrip(")")
            message = (
                f"{REPAIRED} {state} ({detail + '; ' if detail else ''}{self.count} tracks{memory})"
            )
            log.info(message)
            return message
        message = (
            f"rebuilt the {self.kind} index of {self.count} tracks for {self.model_id!r}: {why}"
            f"{memory}"
        )
        log.info(message)
        return message

    def _catch_up(self, current: Fingerprint) -> str:
        """Apply what changed in SQL since the index was saved; rebuild if that is most of it."""
        if not self.max_created and self.count:
            return self._rebuild(current, "the index had no record of when it was last in step")
        in_sql = self._stored.ids()
        in_index = self._ids[self._ids >= 0]
        gone = np.setdiff1d(in_index, in_sql)
        new_ids, new_vectors = self._stored.all(since=self.max_created)
        added = np.setdiff1d(in_sql, in_index)
        missing = np.setdiff1d(added, new_ids)  # new rows with an older timestamp: fetch too
        if len(missing):
            new_ids = np.concatenate([new_ids, missing])
            new_vectors = np.concatenate([new_vectors, self._stored(missing)])
        changed = len(gone) + len(new_ids)
        if changed > max(len(in_sql), 1) // 2:
            return self._rebuild(current, f"out of step with the catalog ({changed} changes)")
        self._remove(gone)
        if len(new_ids):
            self.add(new_ids, new_vectors, save=False)
        replaced = len(new_ids) - len(added)
        self.fingerprint, self.max_created = current.token(), current.max_created or None
        self._compact_if_sparse()
        self.save()
        message = (
            f"brought the {self.kind} index in step: {len(added)} added, {len(gone)} removed,"
            f" {replaced} re-read ({self.count} tracks)"
        )
        log.info(message)
        return message

    def refresh(self, max_age: float) -> str | None:
        """``sync`` if SQL may have changed; the message if it ran.

        SQLite says cheaply whether anyone committed since we last looked (its data
        version), so every call checks. Elsewhere the fingerprint query is repeated
        only when the last check is older than ``max_age`` seconds.
        """
        if self._probe is not None:
            return self.sync() if self._probe.changed() else None
        if time.monotonic() - self.checked_at < max_age:
            return None
        return self.sync()

    def close(self) -> None:
        if self._probe is not None:
            self._probe.close()

    def _after_update(self, save: bool) -> None:
        self.fingerprint = None  # the catalog may hold more than we were told: check at sync
        super()._after_update(save)


__all__ = ["REPAIRED", "VectorIndex", "index_dir", "index_filename"]
