"""Copy a whole catalog into another database (SQLite -> PostgreSQL, or back), resumably.

Every table is copied in foreign-key order with its ids kept (playlists, play history
and embeddings still point at the same tracks), in batches of ``BATCH`` rows, each
batch one transaction. The target records where it is being copied from
(``meta.copied_from``); a copy that was interrupted resumes from the highest id each
table already holds, and a copy into a catalog that holds other data is refused.
Vectors travel as their stored bytes; on PostgreSQL the trigger of schema v3 fills the
pgvector column inside each batch's transaction. At the end each model's search index
is opened on the target (pgvector's HNSW index is built; a FAISS file on SQLite).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Table, func, insert, select, text

from catalog.db import Catalog
from catalog.models import (
    Album,
    Artist,
    AudioFeatures,
    Embedding,
    Meta,
    PlayHistory,
    Playlist,
    PlaylistItem,
    Tag,
    Track,
)
from musicbert.errors import ConfigError

#: Rows per transaction.
BATCH = 2000
#: In foreign-key order; each with the column that orders and resumes it.
TABLES: list[tuple[Table, str]] = [
    (Artist.__table__, "id"),
    (Album.__table__, "id"),
    (Track.__table__, "id"),
    (Tag.__table__, "id"),
    (AudioFeatures.__table__, "track_id"),
    (Embedding.__table__, "id"),
    (Playlist.__table__, "id"),
    (PlaylistItem.__table__, "id"),
    (PlayHistory.__table__, "id"),
]
_COPIED_FROM = "copied_from"
_COPY_DONE = "copy_complete"


@dataclass
class CopyReport:
    source: str
    target: str
    #: table -> rows copied by this run
    copied: dict[str, int] = field(default_factory=dict)
    resumed: bool = False
    #: what opening each model's index on the target said
    indexes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "target": self.target,
            "copied": self.copied,
            "resumed": self.resumed,
            "indexes": self.indexes,
        }


def _meta(catalog: Catalog, key: str) -> str | None:
    with catalog.session() as s:
        return s.scalar(select(Meta.value).where(Meta.key == key))


def _set_meta(session, key: str, value: str) -> None:
    row = session.get(Meta, key)
    if row is None:
        session.add(Meta(key=key, value=value))
    else:
        row.value = value


def _holds_data(catalog: Catalog) -> bool:
    with catalog.session() as s:
        return any(s.execute(select(table).limit(1)).first() for table, _ in TABLES)


def copy_catalog(
    source: Catalog,
    target: Catalog,
    *,
    batch: int = BATCH,
    progress: Callable[[str, int], None] | None = None,
) -> CopyReport:
    """Copy ``source`` into ``target`` (see the module docstring); returns what was done."""
    if source.display_url == target.display_url:
        raise ConfigError("the source and the target of a copy are the same catalog")
    if target.read_only:
        raise ConfigError(target.read_only_message())
    report = CopyReport(source.display_url, target.display_url)
    origin = _meta(target, _COPIED_FROM)
    if origin is None:
        if _holds_data(target):
            raise ConfigError(
                f"the catalog at {target.display_url} already holds music; copy into an "
                "empty catalog (a new database)"
            )
        with target.session() as s:
            _set_meta(s, _COPIED_FROM, source.display_url)
    elif origin != source.display_url:
        raise ConfigError(
            f"the catalog at {target.display_url} is a copy of {origin}, not of "
            f"{source.display_url}; copy into an empty catalog"
        )
    else:
        report.resumed = _meta(target, _COPY_DONE) is None
    for table, key in TABLES:
        report.copied[table.name] = _copy_table(source, target, table, key, batch, progress)
    if target.engine.dialect.name == "postgresql":
        _reset_sequences(target)
    with target.session() as s:
        _set_meta(s, _COPY_DONE, "yes")
    report.indexes = _open_indexes(target)
    return report


def _copy_table(source, target, table: Table, key: str, batch: int, progress) -> int:
    column = table.c[key]
    with target.session() as s:
        done = s.scalar(select(func.max(column)))
    copied = 0
    while True:
        query = select(table).order_by(column).limit(batch)
        if done is not None:
            query = query.where(column > done)
        with source.session() as s:
            rows = [dict(r._mapping) for r in s.execute(query)]
        if not rows:
            return copied
        with target.session() as s:
            s.execute(insert(table), rows)
        done = rows[-1][key]
        copied += len(rows)
        if progress:
            progress(table.name, copied)


def _reset_sequences(target: Catalog) -> None:
    """Rows came with their ids: move each serial sequence past them."""
    with target.session() as s:
        for table, key in TABLES:
            if key != "id":
                continue
            s.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"COALESCE((SELECT max(id) FROM {table.name}), 0) + 1, false)"
                )
            )


def _open_indexes(target: Catalog) -> list[str]:
    from catalog.vector_index import VectorIndex

    with target.session() as s:
        models = s.execute(select(Embedding.model_id, Embedding.dim).distinct()).all()
    messages = []
    for model_id, dim in models:
        index = VectorIndex.open(target, model_id, dim)
        messages.append(f"{model_id}: {index.message}")
        index.close()
    return messages


__all__ = ["BATCH", "CopyReport", "copy_catalog"]
