"""The catalogs test modules open: one per test, closed after it.

Several modules need a ``catalog`` fixture; each makes it from one of these
(``catalog = pytest.fixture(name="catalog")(backend_catalog)``), so that opening and
closing a test's catalog is written once.
"""

from __future__ import annotations

from catalog.db import open_catalog


def backend_catalog(catalog_url):
    """The catalog at ``catalog_url``: SQLite, then PostgreSQL (conftest's parameter)."""
    with open_catalog(catalog_url) as catalog:
        yield catalog


def memory_catalog():
    """An in-memory SQLite catalog."""
    with open_catalog() as catalog:
        yield catalog
