"""A FAISS index over one model's vectors, in memory: build, add, remove, search.

The kind of index follows its size: exact flat search up to ``FLAT_MAX`` vectors, HNSW
above, IVF-PQ with exact re-ranking from the stored vectors beyond ``HNSW_MAX``. Vectors
are L2-normalised and compared by inner product (cosine); ids are track ids.

It exists apart from ``catalog.vector_index`` (which keeps such an index saved beside the
catalog and in step with SQL) so that the search structure can be read, tested and
benchmarked on its own, with no catalog and no files (``FaissIndex.from_vectors``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Self

import faiss
import numpy as np

from catalog.index_config import IVF_MIN, IndexConfig, VectorIndexError
from catalog.vectors import normalise, query_rows

#: Largest id faiss' range selector accepts comfortably; tombstones are -1.
_MAX_ID = 2**62

VectorSource = Callable[[np.ndarray], np.ndarray]


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


class FaissIndex:
    """Nearest-neighbour search over one model's vectors, ids = track ids (nothing saved)."""

    def __init__(
        self,
        model_id: str,
        dim: int,
        config: IndexConfig | None = None,
        *,
        vector_source: VectorSource | None = None,
    ):
        if dim <= 0:
            raise VectorIndexError(f"an index needs a positive dimension, not {dim}")
        self.model_id, self.dim = model_id, int(dim)
        self.config = config or IndexConfig.from_env()
        self._source = vector_source
        self.kind = "flat"
        self._index = faiss.IndexIDMap(faiss.IndexFlatIP(self.dim))
        self._ids = np.empty(0, np.int64)  # copy of the id map; -1 marks an HNSW tombstone
        self._lookup: tuple[np.ndarray, np.ndarray] | None = None
        self._xb: np.ndarray | None = None

    @classmethod
    def from_vectors(
        cls,
        ids: np.ndarray,
        vectors: np.ndarray,
        *,
        model_id: str = "vectors",
        config: IndexConfig | None = None,
        vector_source: VectorSource | None = None,
    ) -> Self:
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
        if kind == "ivfpq" and n < IVF_MIN:
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
        """Add vectors; an id already present is replaced. ``save``: a saved index
        (``VectorIndex``) writes its file afterwards."""
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
        self._compact_if_sparse()
        if save:
            self.save()

    def _compact_if_sparse(self) -> None:
        """Rebuild without tombstones from the vectors the index already holds, once HNSW's
        tombstones pass ``compact_ratio`` of its entries."""
        if self.kind != "hnsw" or self._dead <= self.config.compact_ratio * max(self._ids.size, 1):
            return
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
        queries = query_rows(vectors, self.dim, self.model_id)
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

    def with_config(self, **changes) -> IndexConfig:
        """A copy of the config with search-time settings changed (ef_search, nprobe, ...)."""
        self.config = replace(self.config, **changes)
        if self.kind == "hnsw":
            faiss.downcast_index(self._index.index).hnsw.efSearch = self.config.ef_search
        return self.config

    def save(self) -> None:
        """Nothing to write: an index in memory (``VectorIndex`` saves its file)."""


__all__ = ["FaissIndex", "VectorSource"]
