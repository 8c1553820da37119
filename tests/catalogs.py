"""The catalogs test modules open: one per test, closed after it.

Several modules need a ``catalog`` fixture; each makes it from one of these
(``catalog = pytest.fixture(name="catalog")(backend_catalog)``), so that opening and
closing a test's catalog is written once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from catalog.db import open_catalog


@contextmanager
def fresh_database(backend: str, sqlite_file: Path, request) -> Iterator[str]:
    """The URL of a new, empty catalog: ``sqlite_file``, or a database on the test server
    (dropped afterwards) when ``backend`` is not "sqlite"."""
    if backend == "sqlite":
        yield f"sqlite:///{sqlite_file}"
        return
    server = request.getfixturevalue("pg_server")
    name = server.create_database()
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)


def backend_catalog(catalog_url):
    """The catalog at ``catalog_url``: SQLite, then PostgreSQL (conftest's parameter)."""
    with open_catalog(catalog_url) as catalog:
        yield catalog


def memory_catalog():
    """An in-memory SQLite catalog."""
    with open_catalog() as catalog:
        yield catalog
