"""The catalog on a REAL PostgreSQL server (tests/pg_server.py): what only PostgreSQL has.

The ORM round trip, cascades, unique albums, statistics, name look-ups, concurrent
get-or-create, search and ingest run on both backends through the ``catalog_url``
fixture (tests/conftest.py) in their own modules; pgvector in tests/test_pgvector.py.
Here: the v1 -> current migration, a newer schema refused, concurrent first opens,
and servers that cannot be reached.
"""

from __future__ import annotations

import multiprocessing

import pytest
from sqlalchemy import func, select

from catalog.db import open_catalog
from catalog.models import Meta, Track
from musicbert.errors import ConfigError
from tests.test_migrations import check_upgrade

pytestmark = pytest.mark.postgres


def test_version_1_database_is_upgraded_in_place(pg_server, pg_url):
    fresh = pg_server.create_database()
    try:
        check_upgrade(pg_url, pg_server.url(fresh))
    finally:
        pg_server.drop_database(fresh)


def test_newer_database_is_refused(pg_url):
    open_catalog(pg_url).close()
    with open_catalog(pg_url) as catalog, catalog.session() as s:
        s.get(Meta, "schema_version").value = "99"
    with pytest.raises(ConfigError, match="newer than"):
        open_catalog(pg_url)


def test_concurrent_first_open_creates_the_schema_once(pg_url):
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(3) as pool:
        assert pool.map(_open_and_count, [pg_url] * 3) == [0, 0, 0]
    with open_catalog(pg_url) as catalog, catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(Meta)) == 1


def _open_and_count(url: str) -> int:
    with open_catalog(url) as catalog, catalog.session() as s:
        return s.scalar(select(func.count(Track.id)))


def test_unreachable_server(pg_server, tmp_path):
    url = f"postgresql+psycopg2://postgres@/nodb?host={tmp_path}"
    with pytest.raises(ConfigError, match="cannot open the catalog"):
        open_catalog(url)
    with pytest.raises(ConfigError, match="does not exist"):
        open_catalog(pg_server.url("no_such_database"))
