"""Opening the catalog: one engine, one session factory, the right pragmas.

SQLite (the default) lives in ``MUSICBERT_HOME/catalog.db`` with WAL journaling
(readers never block the writer, so the chat can read while ingest writes) and
foreign keys on (SQLite ignores them otherwise, and deleted tracks would leave
orphan tags). Any SQLAlchemy URL, PostgreSQL included, can be given with
``--db`` or ``MUSICBERT_DB``. Opening also creates or upgrades the schema.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from catalog.models import Base
from musicbert.errors import ConfigError
from musicbert.paths import home_dir

#: Seconds to wait for a database server before saying it cannot be reached.
CONNECT_TIMEOUT_S = 10
#: Seconds an SQLite connection waits for another program's write to finish.
SQLITE_BUSY_TIMEOUT_S = 30


def default_url() -> str:
    """``$MUSICBERT_DB`` when set, else ``catalog.db`` in the home directory."""
    env = os.environ.get("MUSICBERT_DB")
    if env:
        return env
    return f"sqlite:///{home_dir() / 'catalog.db'}"


def safe_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        _use_wal(cursor)
    finally:
        cursor.close()


def _use_wal(cursor) -> None:
    """Switch to WAL once (the mode is stored in the file).

    Switching needs a lock SQLite will not wait for, so when several programs
    open a brand-new catalog at once the switch is retried until it succeeds.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            if mode.lower() not in ("wal", "memory"):
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@dataclass
class Catalog:
    """The database handle every layer above receives."""

    url: str
    engine: Engine
    sessions: sessionmaker[Session] = field(repr=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def display_url(self) -> str:
        """The URL for messages, password hidden."""
        return safe_url(self.url)

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

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
        connect_args: dict = {}
        if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() == "psycopg2":
            connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
        engine = create_engine(parsed, connect_args=connect_args)
    except (ArgumentError, ImportError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"cannot use database URL {safe_url(url)!r} ({exc}); expected e.g. "
            "sqlite:////path/catalog.db or postgresql+psycopg2://user@host/dbname"
        ) from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def open_catalog(url: str | None = None) -> Catalog:
    """Connect, create or upgrade the schema, and return the handle.

    Raises ConfigError for a URL that cannot be used, a server that cannot be
    reached, a file that is not a database, or a schema newer than this code.
    """
    url = url or default_url()
    engine = _engine(url)
    try:
        from catalog.migrations import upgrade

        upgrade(engine)
    except DBAPIError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise ConfigError(f"cannot open the catalog at {safe_url(url)}: {reason}") from exc
    except BaseException:
        engine.dispose()
        raise
    return Catalog(url, engine, sessionmaker(engine, expire_on_commit=False))


__all__ = ["Base", "Catalog", "default_url", "open_catalog", "safe_url"]
