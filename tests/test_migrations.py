"""Schema versions: a version-1 catalog is upgraded in place, whole or not at all.

The same checks run on PostgreSQL in test_postgres.py through ``check_upgrade``; the
rest read the SQLite file directly (a failed migration leaves it untouched, WAL, the
version-2 folds) and are about SQLite.
"""

from __future__ import annotations

import sqlite3
import warnings

import pytest
from sqlalchemy import create_engine, inspect, select, text

import catalog.migrations as migrations
from catalog.db import open_catalog
from catalog.models import SCHEMA_VERSION, Album, Artist, Meta, Tag, Track
from musicbert.errors import ConfigError
from tests.catalog_v1 import ALBUMS, ARTISTS, TRACKS, VECTOR, build_v1_database


def schema_of(url: str) -> dict:
    """Columns, indexes, unique constraints and foreign keys of every table."""
    engine = create_engine(url)
    try:
        with warnings.catch_warnings():
            # reflection knows no type for pgvector's column; its name and nullability do
            warnings.filterwarnings("ignore", "Did not recognize type 'vector'")
            insp = inspect(engine)
            return {
                table: {
                    "columns": sorted(
                        (c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)
                    ),
                    "indexes": sorted(
                        (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                        for i in insp.get_indexes(table)
                    ),
                    "unique": sorted(
                        tuple(u["column_names"]) for u in insp.get_unique_constraints(table)
                    ),
                    "foreign_keys": sorted(
                        (tuple(f["constrained_columns"]), f["referred_table"])
                        for f in insp.get_foreign_keys(table)
                    ),
                }
                for table in insp.get_table_names()
            }
    finally:
        engine.dispose()


def check_upgrade(old_url: str, fresh_url: str) -> None:
    """Build a v1 catalog at old_url, open it, and check data and schema (any database)."""
    build_v1_database(old_url)
    catalog = open_catalog(old_url)
    try:
        with catalog.session() as session:
            assert session.get(Meta, "schema_version").value == str(SCHEMA_VERSION)
            artists = {a.id: (a.name, a.name_key) for a in session.scalars(select(Artist))}
            assert artists == {
                1: ("Beyoncé", "beyonce"),
                2: ("Sigur Rós", "sigur ros"),
                3: ("AC/DC", "ac dc"),
            }
            assert {a.name for a in session.scalars(select(Artist))} == {n for _, n in ARTISTS}
            albums = {a.id: (a.title, a.title_key, a.year) for a in session.scalars(select(Album))}
            # The two artist-less "Mixtape" albums became one, keeping the known year.
            assert albums == {
                1: ("Ágætis byrjun", "agaetis byrjun", 1999),
                2: ("Mixtape", "mixtape", 2004),
                4: ("Back in Black", "back in black", 1980),
            }
            assert len(ALBUMS) == 4
            tracks = {t.id: t for t in session.scalars(select(Track))}
            assert len(tracks) == len(TRACKS)
            for tid, path, title, artist_id, album_id, duration, lic, src, attr in TRACKS:
                track = tracks[tid]
                assert (track.path, track.title, track.artist_id) == (path, title, artist_id)
                assert track.album_id == (2 if album_id == 3 else album_id)
                assert (track.duration, track.licence, track.source, track.attribution) == (
                    duration,
                    lic,
                    src,
                    attr,
                )
            assert tracks[2].title_key == "svefn g englar"
            assert tracks[2].features.key == "F#"
            assert tracks[2].embeddings[0].vector == VECTOR
            assert sorted((t.name, t.confidence) for t in tracks[2].tags) == [
                ("calm", 0.75),
                ("post-rock", 1.0),
            ]
            # New rows work and get their keys, and the new unique index holds.
            session.add(Artist(name="Björk"))
            session.add(Track(path="/new.ogg", content_hash="f" * 64, title="Jóga"))
        with catalog.session() as session:
            assert session.scalars(select(Track.title_key).where(Track.path == "/new.ogg")).one()
            assert session.scalars(select(Tag).where(Tag.kind == "mood")).one().name == "calm"
    finally:
        catalog.close()
    open_catalog(fresh_url).close()
    assert schema_of(old_url) == schema_of(fresh_url)


def test_version_1_database_is_upgraded_in_place(tmp_path):
    check_upgrade(f"sqlite:///{tmp_path / 'old.db'}", f"sqlite:///{tmp_path / 'fresh.db'}")
    with sqlite3.connect(tmp_path / "old.db") as conn:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_upgrade_reports_the_version_it_found(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    build_v1_database(url)
    engine = create_engine(url)
    try:
        assert migrations.upgrade(engine) == 1
        assert migrations.upgrade(engine) == SCHEMA_VERSION
    finally:
        engine.dispose()


def test_failed_migration_leaves_the_old_database_untouched(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    build_v1_database(url)
    before = schema_of(url)

    def half_done(conn):
        conn.execute(text("ALTER TABLE artists ADD COLUMN name_key VARCHAR(512)"))
        conn.execute(text("UPDATE artists SET name = name || ' (changed)'"))
        raise RuntimeError("power cut in the middle of the migration")

    monkeypatch.setitem(migrations.MIGRATIONS, 2, half_done)
    with pytest.raises(RuntimeError, match="power cut"):
        open_catalog(url)
    assert schema_of(url) == before
    with sqlite3.connect(tmp_path / "old.db") as conn:
        assert conn.execute("SELECT value FROM meta").fetchone() == ("1",)
        assert [n for (n,) in conn.execute("SELECT name FROM artists ORDER BY id")] == [
            n for _, n in ARTISTS
        ]
    monkeypatch.undo()
    open_catalog(url).close()  # and the real migration still runs afterwards
    assert "name_key" in {name for name, *_ in schema_of(url)["artists"]["columns"]}


def test_newer_database_is_refused_untouched(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    open_catalog(url).close()
    with sqlite3.connect(tmp_path / "new.db") as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(ConfigError, match="schema version 99, newer than"):
        open_catalog(url)
    with sqlite3.connect(tmp_path / "new.db") as conn:
        assert conn.execute("SELECT value FROM meta").fetchone() == ("99",)


def test_every_version_has_a_migration():
    assert sorted(migrations.MIGRATIONS) == list(range(2, SCHEMA_VERSION + 1))


def test_fresh_database_gets_the_current_version(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    open_catalog(url).close()
    with sqlite3.connect(tmp_path / "fresh.db") as conn:
        assert conn.execute("SELECT value FROM meta").fetchone() == (str(SCHEMA_VERSION),)


def _open_and_read_version(url: str) -> str:
    with open_catalog(url) as catalog, catalog.session() as session:
        return session.get(Meta, "schema_version").value


def test_concurrent_first_open_creates_the_schema_once(tmp_path):
    import multiprocessing

    # Several rounds: the collisions (switching a new file to WAL, creating the tables)
    # happen in a window of a few milliseconds.
    urls = [f"sqlite:///{tmp_path / f'shared{n}.db'}" for n in range(12) for _ in range(3)]
    with multiprocessing.get_context("fork").Pool(3) as pool:
        versions = pool.map(_open_and_read_version, urls, chunksize=1)
    assert versions == [str(SCHEMA_VERSION)] * len(urls)


def _at_version_2(url: str):
    """A v1 catalog brought to version 2 exactly, as a v2 program left it."""
    build_v1_database(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        migrations.MIGRATIONS[2](conn)
        conn.execute(text("UPDATE meta SET value = '2' WHERE key = 'schema_version'"))
    return engine


def test_version_2_name_keys_are_folded_again(tmp_path):
    """Keys stored by version 2's fold ("don t", no "#") are rewritten by the one fold."""
    url = f"sqlite:///{tmp_path / 'v2.db'}"
    engine = _at_version_2(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO artists (name, name_key) VALUES ('Don''t Panic', 'don t panic')")
            )
            conn.execute(
                text(
                    "INSERT INTO albums (title, title_key) VALUES ('Prelude in C#', 'prelude in c')"
                )
            )
    finally:
        engine.dispose()
    catalog = open_catalog(url)
    try:
        with catalog.session() as session:
            keys = {a.name: a.name_key for a in session.scalars(select(Artist))}
            assert keys["Don't Panic"] == "dont panic" and keys["AC/DC"] == "ac dc"
            titles = {a.title: a.title_key for a in session.scalars(select(Album))}
            assert titles["Prelude in C#"] == "prelude in c#"
            assert session.get(Meta, "schema_version").value == str(SCHEMA_VERSION)
    finally:
        catalog.close()


def test_version_2_gains_loudness_lufs_and_keeps_the_old_analysis(tmp_path):
    from catalog.models import AudioFeatures

    url = f"sqlite:///{tmp_path / 'v2.db'}"
    engine = _at_version_2(url)
    try:
        columns = {c["name"] for c in inspect(engine).get_columns("audio_features")}
        assert "loudness_lufs" not in columns
        assert migrations.upgrade(engine) == 2
        columns = {c["name"] for c in inspect(engine).get_columns("audio_features")}
        assert {"loudness_lufs", "tempo_confidence"} <= columns
    finally:
        engine.dispose()
    catalog = open_catalog(url)
    try:
        with catalog.session() as session:
            old = session.get(AudioFeatures, 2)
            assert (old.key, old.loudness_db, old.tempo) == ("F#", -18.0, 62.5)
            assert old.loudness_lufs is None and old.tempo_confidence is None
            old.loudness_lufs, old.tempo_confidence = -14.2, 0.4
        with catalog.session() as session:
            assert session.get(AudioFeatures, 2).loudness_lufs == -14.2
    finally:
        catalog.close()
