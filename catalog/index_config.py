"""What a vector index is set to be, shared by both backends: FAISS beside SQLite
(``catalog.faiss_index`` / ``catalog.vector_index``) and pgvector in PostgreSQL
(``catalog.pgvector_index``).

It exists apart so that the settings, the kinds and the size thresholds that pick a kind
are written once, and a PostgreSQL catalog reads them without loading FAISS.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from musicbert.errors import ConfigError, MusicBertError

#: Exact search is fast enough (a few ms per query) up to about this many vectors.
FLAT_MAX = 200_000
#: Beyond this many, IVF-PQ codes + exact re-ranking from the stored vectors. Measured at
#: 1M on 2 shared cores: recall@10 0.993, p95 39 ms, 47 MB, built in 2 min, where HNSW
#: (M=16) reached 0.82 and took 15 min to build (benchmarks/search.py).
HNSW_MAX = 500_000
KINDS = ("flat", "hnsw", "ivfpq")


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
            return kind == self.kind or (self.kind == "ivfpq" and n < IVF_MIN)
        if kind == "flat":
            return n <= FLAT_MAX
        if kind == "hnsw":
            return FLAT_MAX // 2 < n <= HNSW_MAX
        return n > HNSW_MAX // 2


#: IVF-PQ needs enough vectors to train its quantisers; below this it is flat.
IVF_MIN = 2_000


__all__ = ["FLAT_MAX", "HNSW_MAX", "IVF_MIN", "KINDS", "IndexConfig", "VectorIndexError"]
