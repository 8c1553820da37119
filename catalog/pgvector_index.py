"""Vectors in PostgreSQL itself (pgvector): the index of a catalog whose URL is PostgreSQL.

Schema version 3 (``catalog.migrations``) gives ``embeddings`` an ``embedding vector``
column, the L2-normalised copy of ``vector`` that a trigger keeps in step inside the
writer's own transaction (ingest, ``musicbert reindex``, a copy, another program). Each
model gets a partial HNSW index over ``embedding::vector(dim)`` with ``vector_ip_ops``
(inner product on unit vectors = cosine), created the first time the model's index is
opened. No FAISS file is used: every process, replica and backup sees the same vectors,
and a new track is searchable by every process as soon as its batch commits.

A search is one SELECT: the SQL filters (the search's own filter query, as a subquery)
and ``ORDER BY embedding <#> :q LIMIT k`` together. ``hnsw.ef_search`` follows the
catalog's size (``base_ef``: recall@10 >= 0.95 at 100k and 1M vectors, measured by
benchmarks/search_pgvector.py) and k. pgvector 0.6 filters AFTER the graph walk and has
no iterative scan, so a filtered search over-fetches: ef_search is divided by the share
of tracks passing (at least 2k / share), up to pgvector's 1000. When even 2k / share
exceeds that (a selective filter), or the walk came back
short, the same statement runs as an exact scan (ordered by ``distance + 0``, which the
HNSW index cannot serve; the filters keep their B-tree indexes), so a filtered search
returns k results whenever k tracks pass.

``PgVectorIndex`` answers what ``SearchEngine`` asks of ``catalog.vector_index.VectorIndex``
(``search``, ``vectors``, ``count``, ``in``, ``refresh``, ``sync``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Float, Select, String, bindparam, cast, func, literal_column, select, text
from sqlalchemy.types import UserDefinedType

from catalog.db import Catalog
from catalog.index_config import IndexConfig, VectorIndexError
from catalog.models import Embedding
from catalog.vectors import CatalogVectors, normalise, query_rows

log = logging.getLogger(__name__)

#: pgvector's largest hnsw.ef_search.
EF_SEARCH_MAX = 1000
#: A filtered walk looks at this many times the candidates it expects to need.
OVERFETCH = 2.0
#: Advisory lock under which a model's HNSW index is created (one builder at a time).
_PG_INDEX_LOCK = 0x6D75_7369_6376


class Vector(UserDefinedType):
    """pgvector's ``vector(dim)`` for casts in SQLAlchemy expressions."""

    cache_ok = True

    def __init__(self, dim: int):
        self.dim = int(dim)

    def get_col_spec(self, **_kw) -> str:
        return f"vector({self.dim})"


@dataclass(frozen=True)
class SqlFilter:
    """Allowed tracks as a SELECT of track ids, and how many pass (for ef_search)."""

    query: Select
    count: int


def vector_literal(vector: np.ndarray) -> str:
    """pgvector's text form; 9 significant digits keep a float32 exact."""
    return "[" + ",".join(f"{x:.9g}" for x in np.asarray(vector, np.float32).reshape(-1)) + "]"


def index_name(model_id: str, dim: int) -> str:
    return f"ix_embeddings_hnsw_{hashlib.sha1(f'{model_id}:{dim}'.encode()).hexdigest()[:12]}"


def is_pgvector(catalog: Catalog) -> bool:
    return catalog.engine.dialect.name == "postgresql"


class PgVectorIndex:
    """Nearest-neighbour search over one model's embeddings, inside PostgreSQL."""

    kind = "pgvector-hnsw"
    #: ``search`` takes a ``SqlFilter`` (the filter query runs inside the search statement).
    sql_filters = True

    def __init__(self, catalog: Catalog, model_id: str, dim: int, config: IndexConfig | None):
        if dim <= 0:
            raise VectorIndexError(f"an index needs a positive dimension, not {dim}")
        self.catalog, self.model_id, self.dim = catalog, model_id, int(dim)
        self.config = config or IndexConfig.from_env()
        self._stored = CatalogVectors(catalog, model_id, self.dim)
        self._count = 0
        self.checked_at = 0.0
        self.message = ""
        self.has_hnsw = False
        #: Filtered walks that came back short and were answered by the exact scan.
        self.fallbacks = 0
        self.path = None  # nothing on disk: the database holds it all
        column = literal_column("embeddings.embedding")
        self._vec = cast(column, Vector(self.dim))
        self._where = (
            Embedding.model_id == model_id,
            Embedding.dim == self.dim,
            column.is_not(None),
        )

    # ----------------------------------------------------------------- construction

    @classmethod
    def open(
        cls,
        catalog: Catalog,
        model_id: str,
        dim: int,
        *,
        config: IndexConfig | None = None,
        path=None,
    ) -> PgVectorIndex:
        """The model's index; its HNSW index is created when missing (``.message`` says)."""
        index = cls(catalog, model_id, dim, config)
        index.message = index.ensure_hnsw()
        index.sync()
        return index

    def ensure_hnsw(self) -> str:
        """Create the model's HNSW index if it is missing; say what was done."""
        name = index_name(self.model_id, self.dim)
        exists = text("SELECT 1 FROM pg_indexes WHERE tablename = 'embeddings' AND indexname = :n")
        with self.catalog.engine.connect() as conn:
            if conn.execute(exists, {"n": name}).first():
                self.has_hnsw = True
                return f"index up to date: the pgvector HNSW index {name} is in the database"
        if self.catalog.read_only:
            return "no pgvector HNSW index for this model (read-only catalog): exact search"
        model = self.model_id.replace("'", "''")
        if not re.fullmatch(r"[^\x00]*", model):
            raise VectorIndexError(f"model id {self.model_id!r} cannot be used in SQL")
        started = time.monotonic()
        with self.catalog.engine.begin() as conn:
            conn.execute(select(func.pg_advisory_xact_lock(_PG_INDEX_LOCK)))
            if conn.execute(exists, {"n": name}).first():
                self.has_hnsw = True
                return f"index up to date: the pgvector HNSW index {name} is in the database"
            conn.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
            conn.execute(
                text(
                    f"CREATE INDEX {name} ON embeddings USING hnsw "
                    f"((embedding::vector({self.dim})) vector_ip_ops) "
                    f"WITH (m = {self.config.pg_hnsw_m}, "
                    f"ef_construction = {self.config.pg_ef_construction}) "
                    f"WHERE model_id = '{model}' AND dim = {self.dim}"
                )
            )
            conn.execute(text("ANALYZE embeddings"))  # so the planner knows the rows it serves
        self.has_hnsw = True
        message = (
            f"created the pgvector HNSW index {name} for {self.model_id!r}"
            f" in {time.monotonic() - started:.1f} s"
        )
        log.info(message)
        return message

    # ----------------------------------------------------------------- status

    @property
    def count(self) -> int:
        return self._count

    def __len__(self) -> int:
        return self._count

    def __contains__(self, track_id: object) -> bool:
        try:
            track_id = int(track_id)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False
        with self.catalog.session() as session:
            query = select(Embedding.track_id).where(*self._where, Embedding.track_id == track_id)
            return session.execute(query.limit(1)).first() is not None

    @property
    def ids(self) -> np.ndarray:
        with self.catalog.session() as session:
            rows = session.scalars(select(Embedding.track_id).where(*self._where))
            return np.sort(np.fromiter(rows, np.int64))

    def memory_bytes(self) -> int:
        """On-disk size of the model's HNSW index (PostgreSQL caches it in shared memory)."""
        with self.catalog.engine.connect() as conn:
            size = conn.execute(
                text("SELECT pg_relation_size(to_regclass(:n))"),
                {"n": index_name(self.model_id, self.dim)},
            ).scalar()
        return int(size or 0)

    def sync(self) -> str:
        """Nothing to bring in step (the database is the index): re-count the vectors."""
        with self.catalog.session() as session:
            self._count = int(session.scalar(select(func.count()).where(*self._where)) or 0)
        self.checked_at = time.monotonic()
        return f"index up to date ({self._count} tracks, {self.kind})"

    def refresh(self, max_age: float) -> str | None:
        """Re-count when the count is older than ``max_age`` s (searches always see SQL)."""
        if time.monotonic() - self.checked_at < max_age and self._count:
            return None
        return self.sync()

    def close(self) -> None:
        pass

    # ----------------------------------------------------------------- search

    def vectors(self, ids: Iterable[int]) -> np.ndarray:
        """The stored (normalised) vectors of ``ids``; absent ids give zero rows."""
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, np.int64)
        return normalise(self._stored(ids))

    def search(
        self,
        vectors: np.ndarray,
        k: int,
        id_filter: SqlFilter | Iterable[int] | np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query row, best first; rows padded with -inf / -1.

        ``id_filter``: allowed track ids, or a ``SqlFilter`` whose query runs inside the
        search statement. Every row holds min(k, allowed tracks with a vector) results.
        """
        queries = query_rows(vectors, self.dim, self.model_id)
        k = int(k)
        out_scores = np.full((len(queries), max(k, 0)), -np.inf, np.float32)
        out_ids = np.full((len(queries), max(k, 0)), -1, np.int64)
        condition, passing = self._condition(id_filter)
        if k <= 0 or passing == 0:
            return out_scores[:, :0], out_ids[:, :0]
        for row, query in enumerate(queries):
            scores, ids = self.search_one(query, k, condition, passing)
            out_scores[row, : len(ids)], out_ids[row, : len(ids)] = scores, ids
        width = max((int((out_ids[r] >= 0).sum()) for r in range(len(queries))), default=0)
        return out_scores[:, :width], out_ids[:, :width]

    def _condition(self, id_filter):
        """(a WHERE clause on track_id or None, how many tracks it lets through or None)."""
        if id_filter is None:
            return None, None
        if isinstance(id_filter, SqlFilter):
            return Embedding.track_id.in_(id_filter.query.scalar_subquery()), id_filter.count
        ids = np.unique(
            np.fromiter(id_filter, np.int64)
            if not isinstance(id_filter, np.ndarray)
            else id_filter.astype(np.int64)
        )
        from sqlalchemy import any_
        from sqlalchemy.dialects.postgresql import ARRAY
        from sqlalchemy.types import BigInteger

        allowed = bindparam("allowed", [int(i) for i in ids], type_=ARRAY(BigInteger))
        return Embedding.track_id == any_(allowed), len(ids)

    def base_ef(self) -> int:
        """ef_search for an unfiltered walk: ``config.pg_ef_search``, or by the catalog's
        size: recall@10 >= 0.95 needed 40 at 100k and 700 at 1M vectors
        (benchmarks/search_pgvector.py, m=16, ef_construction=64)."""
        if self.config.pg_ef_search:
            return self.config.pg_ef_search
        return min(EF_SEARCH_MAX, max(40, self._count // 1400))

    def plan(self, k: int, passing: int | None) -> tuple[str, int]:
        """("hnsw", ef_search) or ("exact", 0) for k results among ``passing`` tracks.

        A filter passing a share s of the tracks leaves about s * ef_search of a walk's
        candidates, so a filtered walk uses ef_search / s (at least OVERFETCH * k / s);
        when even OVERFETCH * k / s exceeds pgvector's 1000, the scan is exact.
        """
        total = max(self._count, 1)
        if not self.has_hnsw:
            return "exact", 0
        base = max(self.base_ef(), k)
        if passing is None or passing >= total:
            return "hnsw", min(base, EF_SEARCH_MAX)
        if passing <= self.config.exact_below:
            return "exact", 0
        share = passing / total
        if OVERFETCH * k / share > EF_SEARCH_MAX:
            return "exact", 0
        return "hnsw", min(EF_SEARCH_MAX, math.ceil(max(base, OVERFETCH * k) / share))

    def statement(self, query: np.ndarray, k: int, condition=None, exact: bool = False) -> Select:
        """The one SELECT of a search: filters and ``ORDER BY embedding <#> :q LIMIT k``.

        ``exact`` orders by ``distance + 0``, which the HNSW index cannot answer, so the
        planner scores every passing row (and still uses the B-tree indexes of filters).
        """
        q = cast(bindparam("q", vector_literal(query), type_=String), Vector(self.dim))
        distance = self._vec.op("<#>", return_type=Float)(q)
        stmt = select(Embedding.track_id, distance.label("distance")).where(*self._where)
        if condition is not None:
            stmt = stmt.where(condition)
        return stmt.order_by(distance + 0 if exact else distance).limit(k)

    def search_one(self, query: np.ndarray, k: int, condition=None, passing: int | None = None):
        """(scores, ids) for one normalised query, best first."""
        how, ef = self.plan(k, passing)
        want = min(k, passing if passing is not None else self._count)
        rows = self._run(self.statement(query, k, condition, exact=how == "exact"), ef)
        if how == "hnsw" and len(rows) < want:  # the walk met too few passing tracks
            self.fallbacks += 1
            rows = self._run(self.statement(query, k, condition, exact=True), 0)
        ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        scores = np.fromiter((-r[1] for r in rows), np.float32, len(rows))
        return scores, ids

    def _run(self, stmt: Select, ef: int) -> list:
        with self.catalog.engine.begin() as conn:  # SET LOCAL needs the transaction
            if ef:
                conn.execute(text(f"SET LOCAL hnsw.ef_search = {int(ef)}"))
            return conn.execute(stmt).all()


__all__ = [
    "EF_SEARCH_MAX",
    "PgVectorIndex",
    "SqlFilter",
    "Vector",
    "index_name",
    "is_pgvector",
    "vector_literal",
]
