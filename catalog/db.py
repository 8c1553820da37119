"""Opening the catalog: one engine, one session factory, the right pragmas.

SQLite (the default) lives in ``MUSICBERT_HOME/catalog.db`` with WAL journaling
and foreign keys on; any SQLAlchemy URL (PostgreSQL included) can be given with
``--db`` or ``MUSICBERT_DB``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from catalog.models import Base
from musicbert.errors import ConfigError
from musicbert.paths import home_dir


def default_url() -> str:
    env = os.environ.get("MUSICBERT_DB")
    if env:
        return env
    return f"sqlite:///{home_dir() / 'catalog.db'}"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@dataclass
class Catalog:
    """The database handle every layer above receives."""

    url: str
    engine: Engine
    sessions: sessionmaker[Session] = field(repr=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on any error."""
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def close(self) -> None:
        self.engine.dispose()


def open_catalog(url: str | None = None) -> Catalog:
    """Connect, create or upgrade the schema, and return the handle."""
    url = url or default_url()
    try:
        engine = create_engine(url, future=True)
    except (ArgumentError, ImportError) as exc:
        raise ConfigError(f"cannot use database URL {url!r}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        from catalog.migrations import upgrade

        upgrade(engine)
    except OperationalError as exc:
        raise ConfigError(f"cannot open database {url!r}: {exc.orig}") from exc
    return Catalog(url, engine, sessionmaker(engine, expire_on_commit=False))


__all__ = ["Base", "Catalog", "default_url", "open_catalog"]
