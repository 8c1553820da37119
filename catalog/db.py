"""Opening the catalog: one engine, one session factory, the right pragmas.

SQLite (the default) lives in ``MUSICBERT_HOME/catalog.db`` with WAL journaling
(readers never block the writer, so the chat can read while ingest writes) and
foreign keys on (SQLite ignores them otherwise, and deleted tracks would leave
orphan tags). Any SQLAlchemy URL, PostgreSQL included, can be given with
``--db`` or ``MUSICBERT_DB``. Opening also creates or upgrades the schema.

A catalog whose file or folder cannot be written (a read-only disk, another user's
library) is opened read-only: SQLite ``mode=ro``, and ``immutable`` when its WAL
index cannot be created beside it. Reading commands work as usual (playing records
no history); writing ones (``Catalog.session`` committing changes) fail with a
``ConfigError`` that says so.
"""

from __future__ import annotations

import os
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
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


def _sqlite_read_only_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
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


def _only_history(session: Session) -> bool:
    """Whether a session's only pending changes are new play-history rows."""
    from catalog.models import PlayHistory

    return (
        bool(session.new)
        and not session.dirty
        and not session.deleted
        and all(isinstance(obj, PlayHistory) for obj in session.new)
    )


@dataclass
class Catalog:
    """The database handle every layer above receives."""

    url: str
    engine: Engine
    sessions: sessionmaker[Session] = field(repr=False)
    #: Opened read-only because the database file or its folder cannot be written.
    read_only: bool = False
    #: Why (for messages), e.g. "the folder /x cannot be written".
    read_only_reason: str | None = None
    #: The ``file:`` URI every SQLite connection to a read-only catalog must use.
    sqlite_uri: str | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def display_url(self) -> str:
        """The URL for messages, password hidden."""
        return safe_url(self.url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on any error.

        A write refused because the database is read-only becomes a ``ConfigError``.
        """
        with self.sessions() as session:
            try:
                yield session
                if self.read_only and _only_history(session):
                    session.rollback()  # a read-only library keeps no play history
                    return
                session.commit()
            except OperationalError as exc:
                session.rollback()
                if "readonly" in str(exc.orig or exc).replace("-", "").replace(" ", "").lower():
                    raise ConfigError(self.read_only_message()) from exc
                raise
            except BaseException:
                session.rollback()
                raise

    def read_only_message(self) -> str:
        why = self.read_only_reason or "the database cannot be written"
        return (
            f"the catalog at {self.display_url} is read-only ({why}); reading works, but "
            "this needs to write: make it writable or point MUSICBERT_HOME (or --db) at a "
            "writable folder"
        )

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


def _sqlite_file(url: str) -> Path | None:
    """The database file of a plain SQLite file URL; None for anything else."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if not database or database == ":memory:" or database.startswith("file:") or parsed.query:
        return None
    return Path(database).expanduser().absolute()


def _not_writable(path: Path) -> str | None:
    """Why SQLite could not write the database at ``path`` (None when it can)."""
    folder = path.parent
    if not os.access(folder, os.W_OK):
        return f"the folder {folder} is read-only"
    if path.exists() and not os.access(path, os.W_OK):
        return f"the file {path} is read-only"
    return None


def _read_only_uri(path: Path) -> str:
    """``mode=ro``; plus ``immutable`` when SQLite could not create the WAL index file
    beside it (it needs ``-shm`` to read a WAL database; immutable reads without)."""
    uri = "file:" + urllib.parse.quote(str(path)) + "?mode=ro"
    shm = path.with_name(path.name + "-shm")
    if not shm.exists() and not os.access(path.parent, os.W_OK):
        uri += "&immutable=1"
    return uri


def _check_folder(path: Path) -> None:
    """A clear error when the catalog's folder is missing, or a file stands in its way."""
    for parent in (path.parent, *path.parent.parents):
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(
                    f"cannot open the catalog at {path}: {parent} is a file, not a folder; "
                    "move it away or point MUSICBERT_HOME (or --db) elsewhere"
                )
            break
    if path.is_dir():
        raise ConfigError(
            f"cannot open the catalog at {path}: that is a folder, not a database file"
        )
    if not path.parent.is_dir():
        raise ConfigError(
            f"cannot open the catalog at {path}: the folder {path.parent} does not exist; "
            "create it or point MUSICBERT_HOME (or --db) elsewhere"
        )


def _open_read_only(url: str, path: Path, why: str) -> Catalog:
    """The catalog at ``path`` for reading only (its file or folder cannot be written)."""
    if not path.exists():
        raise ConfigError(
            f"there is no catalog at {path} and it cannot be created there ({why}); "
            "point MUSICBERT_HOME (or --db) at a writable folder"
        )
    uri = _read_only_uri(path)
    engine = create_engine(
        url,
        creator=lambda: sqlite3.connect(
            uri, uri=True, timeout=SQLITE_BUSY_TIMEOUT_S, check_same_thread=False
        ),
    )
    event.listen(engine, "connect", _sqlite_read_only_pragmas)
    try:
        from catalog.migrations import _check_not_newer, current_version

        with engine.connect() as conn:
            found = current_version(conn)
        _check_not_newer(found)
    except DBAPIError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise ConfigError(
            f"cannot open the read-only catalog at {safe_url(url)} ({why}): {reason}"
        ) from exc
    except BaseException:
        engine.dispose()
        raise
    from catalog.models import SCHEMA_VERSION

    if found != SCHEMA_VERSION:
        engine.dispose()
        raise ConfigError(
            f"the catalog at {safe_url(url)} is read-only ({why}) and its schema "
            f"(version {found}) needs an upgrade to version {SCHEMA_VERSION}, which writes; "
            "open it once where it can be written"
        )
    return Catalog(
        url,
        engine,
        sessionmaker(engine, expire_on_commit=False),
        read_only=True,
        read_only_reason=why,
        sqlite_uri=uri,
    )


def _lost_server(url: str):
    """A ``handle_error`` hook for an open catalog on a database server: a connection the
    server dropped (restarted, stopped, killed) or a server that no longer answers becomes
    one ``ConfigError`` line, not a traceback. The pool drops the dead connection, so the
    next statement reconnects once the server is back."""

    def handle(context) -> Exception | None:
        if context.dialect.name == "sqlite":
            return None
        lost = context.is_disconnect
        unreachable = context.connection is None and isinstance(
            context.sqlalchemy_exception, OperationalError
        )
        if not (lost or unreachable):
            return None
        original = context.original_exception
        reason = (str(original).strip().splitlines() or [type(original).__name__])[0]
        return ConfigError(
            f"lost the connection to the catalog at {safe_url(url)} ({reason}): is the "
            "database server running? try again once it is"
        )

    return handle


def open_catalog(url: str | None = None) -> Catalog:
    """Connect, create or upgrade the schema, and return the handle.

    Raises ConfigError for a URL that cannot be used, a server that cannot be
    reached, a file that is not a database, or a schema newer than this code.
    A SQLite file that cannot be written is opened read-only (``Catalog.read_only``).
    """
    url = url or default_url()
    path = _sqlite_file(url)
    if path is not None:
        _check_folder(path)
        why = _not_writable(path)
        if why:
            return _open_read_only(url, path, why)
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
    event.listen(engine, "handle_error", _lost_server(url))
    return Catalog(url, engine, sessionmaker(engine, expire_on_commit=False))


__all__ = ["Base", "Catalog", "default_url", "open_catalog", "safe_url"]
