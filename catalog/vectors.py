"""A model's track vectors as the SQL catalog stores them, read back.

Both index backends and the tools beside them (song paths, the library map) read the
``embeddings`` table the same way: decoded, in bulk or by id, summarised by a cheap
fingerprint that any change moves, and L2-normalised for cosine search. That reading
lives here, once, and needs neither FAISS nor pgvector.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import func, select

from catalog.db import Catalog
from catalog.index_config import VectorIndexError
from catalog.models import Embedding


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Unit rows (zero rows stay zero), float32, C-contiguous: what faiss IP search expects."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def query_rows(vectors: np.ndarray, dim: int, model_id: str) -> np.ndarray:
    """Query vectors as unit float32 rows, checked against an index's dimension."""
    queries = normalise(np.atleast_2d(np.asarray(vectors, np.float32)))
    if queries.shape[1] != dim:
        raise VectorIndexError(
            f"query has dim {queries.shape[1]} but the index of {model_id!r} has dim {dim}"
        )
    return queries


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


__all__ = ["CatalogVectors", "Fingerprint", "fingerprint", "normalise", "query_rows"]
