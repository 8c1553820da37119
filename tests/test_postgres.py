"""The catalog on a REAL PostgreSQL 15 server, started by tests/pg_server.py.

The same code paths as on SQLite: ORM round trip, cascades, the v1 -> v2
migration, statistics, name look-ups, concurrent get-or-create, and errors.
"""

from __future__ import annotations

import multiprocessing

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from catalog.db import open_catalog
from catalog.models import SCHEMA_VERSION, Album, Artist, Meta, Tag, Track
from catalog.queries import find_tracks, library_stats, track_rows
from musicbert.errors import ConfigError
from tests.catalog_sample import SAMPLE, fill_sample
from tests.test_migrations import check_upgrade
from tests.test_queries import _add_names

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_catalog(pg_url):
    with open_catalog(pg_url) as catalog:
        yield catalog


def test_server_is_postgresql_15(pg_catalog):
    assert pg_catalog.engine.dialect.name == "postgresql"
    with pg_catalog.engine.connect() as conn:
        assert conn.execute(text("SHOW server_version")).scalar().startswith("15.")


def test_fresh_schema_and_round_trip(pg_catalog):
    ids = fill_sample(pg_catalog)
    with pg_catalog.session() as s:
        assert s.get(Meta, "schema_version").value == str(SCHEMA_VERSION)
        halo = s.get(Track, ids["Halo"])
        assert halo.artist.name == "Beyoncé" and halo.artist.name_key == "beyonce"
        assert halo.features.key == "B"
        assert halo.embeddings[0].vector == b"\x00" * 8
        assert sorted(t.origin for t in halo.tags) == ["file", "model"]
    rows = track_rows(pg_catalog, [ids["Svefn-g-englar"], ids["Halo"]])
    assert [r.title for r in rows] == ["Svefn-g-englar", "Halo"]
    assert rows[0].album.title == "Ágætis byrjun"


def test_foreign_keys_and_cascades(pg_catalog):
    ids = fill_sample(pg_catalog)
    with pytest.raises(IntegrityError), pg_catalog.session() as s:
        s.add(Tag(track_id=987654, name="orphan"))
    with pg_catalog.session() as s:
        s.execute(text("DELETE FROM tracks WHERE id = :id"), {"id": ids["Halo"]})
    with pg_catalog.session() as s:
        assert s.scalar(select(func.count(Tag.id)).where(Tag.track_id == ids["Halo"])) == 0


def test_artist_less_albums_are_unique(pg_catalog):
    with pg_catalog.session() as s:
        s.add(Album(title="Mixtape"))
    with pytest.raises(IntegrityError), pg_catalog.session() as s:
        s.add(Album(title="Mixtape"))


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


def test_stats(pg_catalog):
    fill_sample(pg_catalog)
    stats = library_stats(pg_catalog)
    assert stats["database"].startswith("postgresql+psycopg2://")
    assert stats["tracks"] == len(SAMPLE) and stats["artists"] == 5 and stats["albums"] == 6
    assert stats["total_duration"] == pytest.approx(sum(row[4] for row in SAMPLE))
    assert stats["tag_rows_by_origin"] == {"file": 11, "model": 1}
    by_artist = {a["artist"]: a["tracks"] for a in stats["by_artist"]}
    assert by_artist == {
        "AC/DC": 2,
        "Ludwig van Beethoven": 2,
        "Adele": 1,
        "Beyoncé": 1,
        "Sigur Rós": 1,
        None: 1,
    }
    assert stats["by_artist"][-1]["artist"] is None  # no-artist last, as on SQLite
    assert {g["licence"] for g in stats["by_licence"]} == {
        None,
        "public domain",
        "CC BY 3.0",
        "CC0",
    }


def test_find_tracks(pg_catalog):
    ids = fill_sample(pg_catalog)
    assert find_tracks(pg_catalog, "beyonce", "artist").kind == "accent"
    assert find_tracks(pg_catalog, "bethoven", "artist").names == ["Ludwig van Beethoven"]
    found = find_tracks(pg_catalog, "AC/DC", "artist")
    assert found.kind == "exact"
    assert found.track_ids == [ids["Hells Bells"], ids["Back in Black"]]
    assert "Hells Bells" in find_tracks(pg_catalog, "Hallo Bells").suggestions


def test_concurrent_get_or_create(pg_catalog):
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_add_names, args=(pg_catalog.url, w, queue)) for w in range(3)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert results == ["ok"] * 3
    with pg_catalog.session() as s:
        assert s.scalar(select(func.count(Artist.id))) == 5 + 3 * 15
        assert s.scalar(select(func.count(Album.id))) == 10


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
