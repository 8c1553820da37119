"""A FAISS index over one model's track embeddings, kept in step with the SQL catalog.

(On PostgreSQL the database holds the vectors itself, with pgvector: ``open`` hands back
a ``catalog.pgvector_index.PgVectorIndex`` and nothing here is used.)

The SQL ``embeddings`` table is the truth; the index is a fast, disposable copy of
it. Vectors are L2-normalised and compared by inner product (cosine), and the
index's ids are track ids. The kind of index follows the catalog's size: exact
flat search up to ``FLAT_MAX`` tracks, HNSW above, IVF-PQ with exact re-ranking
from the stored vectors beyond ``HNSW_MAX``.

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
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path

import faiss
import numpy as np
from sqlalchemy import func, select

from catalog.db import Catalog
from catalog.models import Embedding
from musicbert.errors import ConfigError, MusicBertError
from musicbert.paths import home_dir

log = logging.getLogger(__name__)

#: Exact search is fast enough (a few ms per query) up to about this many vectors.
FLAT_MAX = 200_000
#: Beyond this many, IVF-PQ codes + exact re-ranking from the stored vectors. Measured at
#: 1M on 2 shared cores: recall@10 0.993, p95 39 ms, 47 MB, built in 2 min, where HNSW
#: (M=16) reached 0.82 and took 15 min to build (benchmarks/search.py).
HNSW_MAX = 500_000
KINDS = ("flat", "hnsw", "ivfpq")
FORMAT_VERSION = 1
#: How the message of a repaired (damaged or deleted) index begins.
REPAIRED = "rebuilt the search index: it was"
#: ``_load`` reasons that mean the saved index was damaged, not merely stale.
_DAMAGE = ("unreadable", "corrupt", "damaged")
#: Largest id faiss' range selector accepts comfortably; tombstones are -1.
_MAX_ID = 2**62

VectorSource = Callable[[np.ndarray], np.ndarray]


class VectorIndexError(MusicBertError):
    """Vectors or settings the index cannot use (wrong dimension, unknown kind)."""


@dataclass(frozen=True)
class IndexConfig:
    """How the index is built and searched; the defaults suit a personal library."""

    #: "flat", "hnsw", "ivfpq" or None to follow the catalog's size.
    kind: str | None = None
    #: Graph degree and build effort. M=16 / efConstruction=40 builds twice as fast but
    #: lost recall (0.97 at 100k, 0.74 at 1M with ef_search=128; benchmarks/search.py).
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 128
    #: IVF lists; None picks about sqrt(n).
    nlist: int | None = None
    #: PQ sub-quantisers (bytes per vector); must divide the dimension (adjusted if not).
    pq_m: int = 32
    nprobe: int = 32
    #: IVF-PQ candidates re-ranked exactly from the stored vectors (at least 10 * k).
    rerank: int = 400
    #: A filtered search over at most this many allowed ids scores them exactly.
    exact_below: int = 4096
    #: HNSW cannot delete; it is rebuilt once this fraction of its entries are tombstones.
    compact_ratio: float = 0.25
    #: pgvector (a PostgreSQL catalog, ``catalog.pgvector_index``): HNSW graph degree and
    #: build effort; ``exact_below`` above applies there too.
    pg_hnsw_m: int = 16
    pg_ef_construction: int = 64
    #: pgvector's hnsw.ef_search for an unfiltered walk; None picks it by the catalog's
    #: size (``PgVectorIndex.base_ef``), filtered walks raise it by the share that passes.
    pg_ef_search: int | None = None
    #: OpenMP threads for a small batch of queries. One: on a busy machine, threads
    #: waiting for each other cost a scheduler slice (~20 ms), far more than the search.
    search_threads: int = 1

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in KINDS:
            raise ConfigError(f"unknown index kind {self.kind!r}; use one of {', '.join(KINDS)}")

    @classmethod
    def from_env(cls, **overrides) -> IndexConfig:
        """``MUSICBERT_INDEX_KIND`` forces a kind (useful to try HNSW on a small library)."""
        kind = os.environ.get("MUSICBERT_INDEX_KIND") or None
        return cls(**{"kind": kind, **overrides})

    def kind_for(self, n: int) -> str:
        if self.kind is not None:
            return self.kind
        if n <= FLAT_MAX:
            return "flat"
        return "hnsw" if n <= HNSW_MAX else "ivfpq"

    def kind_fits(self, kind: str, n: int) -> bool:
        """Whether an existing index of ``kind`` may stay (with slack, so it never flaps)."""
        if self.kind is not None:
            return kind == self.kind or (self.kind == "ivfpq" and n < _IVF_MIN)
        if kind == "flat":
            return n <= FLAT_MAX
        if kind == "hnsw":
            return FLAT_MAX // 2 < n <= HNSW_MAX
        return n > HNSW_MAX // 2


#: IVF-PQ needs enough vectors to train its quantisers; below this it is flat.
_IVF_MIN = 2_000


# --------------------------------------------------------------------------- catalog access


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


@dataclass(frozen=True)
class Fingerprint:
    """A cheap summary of a model's embedding rows; any insert, delete or re-embed changes it."""

    count: int
    id_sum: int
    track_sum: int
    max_id: int
    max_created: str

    def token(self) -> str:
        return f"{self.count}:{self.id_sum}:{self.track_sum}:{self.max_id}:{self.max_created}"


def fingerprint(catalog: Catalog, model_id: str, dim: int) -> Fingerprint:
    where = (Embedding.model_id == model_id, Embedding.dim == dim)
    with catalog.session() as session:
        row = session.execute(
            select(
                func.count(Embedding.id),
                func.sum(Embedding.id),
                func.sum(Embedding.track_id),
                func.max(Embedding.id),
                func.max(Embedding.created_at),
            ).where(*where)
        ).one()
    created = row[4]
    if isinstance(created, datetime):
        created = created.isoformat(sep=" ")
    return Fingerprint(
        int(row[0] or 0), int(row[1] or 0), int(row[2] or 0), int(row[3] or 0), str(created or "")
    )


def _decode(blob: bytes, dim: int) -> np.ndarray:
    vector = np.frombuffer(blob, dtype="<f4")
    if vector.shape[0] != dim:
        raise VectorIndexError(f"a stored vector has {vector.shape[0]} values, expected {dim}")
    return vector


def _chunks(values: np.ndarray, size: int = 900) -> Iterator[np.ndarray]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class CatalogVectors:
    """Reads a model's stored vectors back from SQL (for rebuilds and exact re-ranking)."""

    def __init__(self, catalog: Catalog, model_id: str, dim: int):
        self.catalog, self.model_id, self.dim = catalog, model_id, dim

    def _where(self):
        return (Embedding.model_id == self.model_id, Embedding.dim == self.dim)

    def all(self, since: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(track ids, vectors) of every row, or of rows created at or after ``since``."""
        query = select(Embedding.track_id, Embedding.vector).where(*self._where())
        if since:
            query = query.where(Embedding.created_at >= datetime.fromisoformat(since))
        ids: list[int] = []
        blocks: list[np.ndarray] = []
        with self.catalog.session() as session:
            for part in session.execute(query.order_by(Embedding.track_id)).partitions(8192):
                ids.extend(row[0] for row in part)
                blocks.append(np.stack([_decode(row[1], self.dim) for row in part]))
        if not ids:
            return np.empty(0, np.int64), np.empty((0, self.dim), np.float32)
        return np.asarray(ids, np.int64), np.concatenate(blocks).astype(np.float32, copy=False)

    def ids(self) -> np.ndarray:
        with self.catalog.session() as session:
            rows = session.execute(select(Embedding.track_id).where(*self._where())).scalars()
            return np.fromiter(rows, dtype=np.int64)

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        """Vectors in the order of ``ids``; a row that vanished meanwhile reads as zeros."""
        ids = np.asarray(ids, np.int64)
        out = np.zeros((len(ids), self.dim), np.float32)
        where = {int(track_id): i for i, track_id in enumerate(ids)}
        with self.catalog.session() as session:
            for chunk in _chunks(np.unique(ids)):
                query = select(Embedding.track_id, Embedding.vector).where(
                    *self._where(), Embedding.track_id.in_([int(x) for x in chunk])
                )
                for track_id, blob in session.execute(query):
                    out[where[track_id]] = _decode(blob, self.dim)
        return out


# --------------------------------------------------------------------------- the index


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Unit rows (zero rows stay zero), float32, C-contiguous: what faiss IP search expects."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def _sha256(buffer) -> str:
    return "sha256:" + hashlib.sha256(memoryview(buffer)).hexdigest()


def _write_atomic(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(memoryview(data))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@contextmanager
def _omp_threads(n: int) -> Iterator[None]:
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _largest_divisor_at_most(n: int, limit: int) -> int:
    return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


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


class VectorIndex:
    """Nearest-neighbour search over the embeddings of one model, ids = track ids."""

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
        if dim <= 0:
            raise VectorIndexError(f"an index needs a positive dimension, not {dim}")
        self.model_id, self.dim = model_id, int(dim)
        self.config = config or IndexConfig.from_env()
        self.catalog, self.path = catalog, path
        self._stored = CatalogVectors(catalog, model_id, dim) if catalog is not None else None
        self._source = vector_source or self._stored
        self.kind = "flat"
        self._index = faiss.IndexIDMap(faiss.IndexFlatIP(self.dim))
        self._ids = np.empty(0, np.int64)  # copy of the id map; -1 marks an HNSW tombstone
        self._lookup: tuple[np.ndarray, np.ndarray] | None = None
        self._xb: np.ndarray | None = None
        self.fingerprint: str | None = None
        self.max_created: str | None = None
        self.message = ""
        self.checked_at = 0.0
        self._probe = _ChangeProbe.for_catalog(catalog) if catalog is not None else None

    # ----------------------------------------------------------------- construction

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

    @classmethod
    def from_vectors(
        cls,
        ids: np.ndarray,
        vectors: np.ndarray,
        *,
        model_id: str = "vectors",
        config: IndexConfig | None = None,
        vector_source: VectorSource | None = None,
    ) -> VectorIndex:
        """An in-memory index over given vectors (benchmarks, tools); nothing is saved."""
        vectors = np.asarray(vectors)
        if vectors.ndim != 2:
            raise VectorIndexError("vectors must be a 2-D array (n, dim)")
        index = cls(model_id, vectors.shape[1], config, vector_source=vector_source)
        index._build(np.asarray(ids, np.int64), vectors)
        return index

    # ----------------------------------------------------------------- status

    @property
    def count(self) -> int:
        """Live vectors (tombstones excluded)."""
        return int(np.count_nonzero(self._ids >= 0))

    def __len__(self) -> int:
        return self.count

    def __contains__(self, track_id: object) -> bool:
        return bool(self._positions(np.asarray([track_id], np.int64))[1][0])

    @property
    def ids(self) -> np.ndarray:
        return np.sort(self._ids[self._ids >= 0])

    @property
    def _dead(self) -> int:
        return int(self._ids.size - self.count)

    def memory_bytes(self) -> int:
        """Size of the serialised index (what it occupies in memory, within a few %)."""
        return int(faiss.serialize_index(self._index).nbytes)

    # ----------------------------------------------------------------- building

    def _build(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors = normalise(vectors)
        if vectors.shape[1] != self.dim:
            raise VectorIndexError(f"vectors have dim {vectors.shape[1]}, index expects {self.dim}")
        if len(np.unique(ids)) != len(ids):
            raise VectorIndexError("track ids given to the index must be unique")
        n = len(ids)
        kind = self.config.kind_for(n)
        if kind == "ivfpq" and n < _IVF_MIN:
            kind = "flat"  # too few vectors to train quantisers; flat is exact and instant
        if kind == "flat":
            inner = faiss.IndexFlatIP(self.dim)
        elif kind == "hnsw":
            inner = faiss.IndexHNSWFlat(self.dim, self.config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = self.config.ef_construction
            inner.hnsw.efSearch = self.config.ef_search
        else:
            inner = self._train_ivfpq(vectors)
        index = faiss.IndexIDMap(inner)
        if n:
            index.add_with_ids(vectors, np.ascontiguousarray(ids, np.int64))
        self.kind, self._index = kind, index
        self._refresh_ids()

    def _train_ivfpq(self, vectors: np.ndarray) -> faiss.Index:
        n = len(vectors)
        nlist = self.config.nlist or int(np.sqrt(n))
        nlist = max(1, min(nlist, n // 39))
        pq_m = _largest_divisor_at_most(self.dim, self.config.pq_m)
        nbits = 8 if n >= 256 * 39 else max(4, int(np.log2(n / 39)))
        quantizer = faiss.IndexFlatIP(self.dim)
        inner = faiss.IndexIVFPQ(
            quantizer, self.dim, nlist, pq_m, nbits, faiss.METRIC_INNER_PRODUCT
        )
        inner.own_fields = True
        quantizer.this.disown()
        sample_size = min(n, max(nlist * 40, 256 * 40))  # k-means needs ~40 points a centroid
        rng = np.random.default_rng(0)
        sample = vectors[np.sort(rng.choice(n, sample_size, replace=False))]
        inner.train(sample)
        inner.nprobe = min(self.config.nprobe, nlist)
        return inner

    def _refresh_ids(self) -> None:
        self._ids = faiss.vector_to_array(self._index.id_map).astype(np.int64, copy=False)
        self._lookup = None
        self._xb = None

    def _positions(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(position in the id map, found) for each id; tombstones are never found."""
        if self._lookup is None:
            order = np.argsort(self._ids, kind="stable")
            self._lookup = (order, self._ids[order])
        order, sorted_ids = self._lookup
        j = np.searchsorted(sorted_ids, ids)
        j = np.minimum(j, max(len(sorted_ids) - 1, 0))
        found = (sorted_ids[j] == ids) & (ids >= 0) if len(sorted_ids) else np.zeros(len(ids), bool)
        return (order[j] if len(order) else np.zeros(len(ids), np.int64)), found

    def _flat_storage(self) -> np.ndarray | None:
        """A zero-copy (n, dim) view of the raw vectors for flat and HNSW indexes."""
        if self.kind == "ivfpq":
            return None
        if self._xb is None:
            inner = faiss.downcast_index(self._index.index)
            flat = inner if self.kind == "flat" else faiss.downcast_index(inner.storage)
            n = flat.ntotal
            self._xb = faiss.rev_swig_ptr(flat.get_xb(), n * self.dim).reshape(n, self.dim)
        return self._xb

    # ----------------------------------------------------------------- updates

    def add(self, ids: Iterable[int], vectors: np.ndarray, *, save: bool = True) -> None:
        """Add vectors; an id already present is replaced."""
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, np.int64)
        vectors = np.asarray(vectors, np.float32).reshape(len(ids), -1) if len(ids) else None
        if vectors is None:
            return
        if vectors.shape[1] != self.dim:
            raise VectorIndexError(
                f"vectors have dim {vectors.shape[1]} but the index of {self.model_id!r} has"
                f" dim {self.dim}"
            )
        if len(np.unique(ids)) != len(ids) or (ids < 0).any():
            raise VectorIndexError("track ids must be unique and non-negative")
        self._remove(ids)
        if self.kind == "ivfpq" and not self._index.is_trained:  # pragma: no cover - defensive
            raise VectorIndexError("the IVF-PQ index is not trained; rebuild it")
        self._index.add_with_ids(normalise(vectors), ids)
        self._refresh_ids()
        self._after_update(save)

    def remove(self, ids: Iterable[int], *, save: bool = True) -> int:
        """Remove ids (absent ones are ignored); returns how many were present."""
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, np.int64)
        removed = self._remove(ids)
        self._after_update(save)
        return removed

    def _remove(self, ids: np.ndarray) -> int:
        positions, found = self._positions(ids)
        if not found.any():
            return 0
        present = ids[found]
        if self.kind == "hnsw":  # HNSW cannot delete: blank the id, the node keeps routing
            self._ids = self._ids.copy()
            self._ids[positions[found]] = -1
            faiss.copy_array_to_vector(self._ids, self._index.id_map)
        else:
            self._index.remove_ids(faiss.IDSelectorBatch(present))
        self._refresh_ids()
        return int(found.sum())

    def _after_update(self, save: bool) -> None:
        if self.kind == "hnsw" and self._dead > self.config.compact_ratio * max(self._ids.size, 1):
            self._compact()
        self.fingerprint = None  # the catalog may hold more than we were told: check at sync
        if save:
            self.save()

    def _compact(self) -> None:
        """Rebuild without tombstones from the vectors the index already holds."""
        alive = self._ids >= 0
        vectors = np.array(self._flat_storage()[alive])
        self._build(self._ids[alive], vectors)

    # ----------------------------------------------------------------- search

    def search(
        self, vectors: np.ndarray, k: int, id_filter: Iterable[int] | np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query row, best first; rows padded with -inf / -1.

        With ``id_filter`` only those track ids are candidates, and every row holds
        min(k, allowed ids present) results: small allowed sets are scored exactly,
        large ones go through a faiss id selector with an exact fallback.
        """
        queries = normalise(np.atleast_2d(np.asarray(vectors, np.float32)))
        if queries.shape[1] != self.dim:
            raise VectorIndexError(
                f"query has dim {queries.shape[1]} but the index of {self.model_id!r} has"
                f" dim {self.dim}"
            )
        nq = len(queries)
        if nq <= 8 and self.config.search_threads:
            with _omp_threads(self.config.search_threads):
                return self._search(queries, k, id_filter)
        return self._search(queries, k, id_filter)

    def _search(self, queries: np.ndarray, k: int, id_filter) -> tuple[np.ndarray, np.ndarray]:
        nq = len(queries)
        allowed: np.ndarray | None = None
        if id_filter is not None:
            wanted = np.unique(
                np.fromiter(id_filter, np.int64)
                if not isinstance(id_filter, np.ndarray)
                else id_filter.astype(np.int64)
            )
            allowed = wanted[self._positions(wanted)[1]]
            available = len(allowed)
        else:
            available = self.count
        k = min(int(k), available)
        if k <= 0:
            return np.empty((nq, 0), np.float32), np.empty((nq, 0), np.int64)
        if allowed is not None and (len(allowed) <= self.config.exact_below or len(allowed) <= k):
            return self._exact(queries, allowed, k)
        scores, ids = self._approximate(queries, k, allowed)
        short = (ids < 0).any(axis=1)
        if short.any():  # the graph or the probed lists held too few allowed ids
            if allowed is None:
                allowed = self._ids[self._ids >= 0]
            s2, i2 = self._exact(queries[short], allowed, k)
            scores[short], ids[short] = s2, i2
        return scores, ids

    def _approximate(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        selector = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(allowed)
        elif self._dead:
            selector = faiss.IDSelectorRange(0, _MAX_ID)
        fetch = k
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW()
            params.efSearch = max(self.config.ef_search, k)
        elif self.kind == "ivfpq":
            params = faiss.SearchParametersIVF()
            params.nprobe = self.config.nprobe
            fetch = min(max(self.config.rerank, 10 * k), self.count)
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        scores, ids = self._index.search(queries, fetch, params=params)
        if self.kind == "ivfpq":
            scores, ids = self._rerank(queries, ids, k)
        return scores, ids

    def _rerank(self, queries: np.ndarray, candidates: np.ndarray, k: int):
        """Exact scores from the stored vectors for IVF-PQ's approximate candidates."""
        if self._source is None:
            raise VectorIndexError("an IVF-PQ index needs the stored vectors to re-rank")
        out_scores = np.full((len(queries), k), -np.inf, np.float32)
        out_ids = np.full((len(queries), k), -1, np.int64)
        for row, (query, cand) in enumerate(zip(queries, candidates, strict=True)):
            cand = cand[cand >= 0]
            if not len(cand):
                continue
            exact = self._source(cand) @ query
            top = np.argsort(-exact, kind="stable")[:k]
            out_scores[row, : len(top)], out_ids[row, : len(top)] = exact[top], cand[top]
        return out_scores, out_ids

    def vectors(self, ids: Iterable[int]) -> np.ndarray:
        """The stored (normalised) vectors of ``ids``; absent ids give zero rows."""
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, np.int64)
        storage = self._flat_storage()
        if storage is None:
            return normalise(self._source(ids)) if self._source else np.zeros((len(ids), self.dim))
        positions, found = self._positions(ids)
        out = np.zeros((len(ids), self.dim), np.float32)
        out[found] = storage[positions[found]]
        return out

    def _exact(self, queries: np.ndarray, allowed: np.ndarray, k: int):
        vectors = self.vectors(allowed)
        scores = queries @ vectors.T
        k = min(k, len(allowed))
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        part = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-part, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        return np.take_along_axis(scores, top, axis=1).astype(np.float32), allowed[top]

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
        if self.kind == "hnsw" and self._dead > self.config.compact_ratio * max(self._ids.size, 1):
            self._compact()
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

    def with_config(self, **changes) -> IndexConfig:
        """A copy of the config with search-time settings changed (ef_search, nprobe, ...)."""
        self.config = replace(self.config, **changes)
        if self.kind == "hnsw":
            faiss.downcast_index(self._index.index).hnsw.efSearch = self.config.ef_search
        return self.config


__all__ = [
    "FLAT_MAX",
    "HNSW_MAX",
    "CatalogVectors",
    "Fingerprint",
    "IndexConfig",
    "VectorIndex",
    "VectorIndexError",
    "fingerprint",
    "index_dir",
    "index_filename",
    "normalise",
]
