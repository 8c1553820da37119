"""Opening the catalog: where it lives, its pragmas, and clear errors for bad URLs.

The tests of the catalog's behaviour run on SQLite and PostgreSQL (``catalog_url``); the
default location, the pragmas, a file that is not a database, another program's file
and WAL's first switch are about SQLite files, and run there only (PostgreSQL's own
faults: test_postgres.py, test_faults.py)."""

from __future__ import annotations

import socket

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from catalog.db import default_url, open_catalog, safe_url
from catalog.models import (
    Album,
    Artist,
    AudioFeatures,
    Embedding,
    PlayHistory,
    Playlist,
    PlaylistItem,
    Tag,
    Track,
)
from musicbert.errors import ConfigError


def _track(path: str, title: str, **kw) -> Track:
    return Track(path=path, content_hash="0" * 64, title=title, **kw)


def test_default_is_sqlite_in_home(isolated_home):
    assert default_url() == f"sqlite:///{isolated_home / 'catalog.db'}"
    with open_catalog() as catalog:
        assert catalog.is_sqlite
    assert (isolated_home / "catalog.db").exists()


def test_musicbert_db_overrides_default(tmp_path, monkeypatch, isolated_home):
    url = f"sqlite:///{tmp_path / 'other.db'}"
    monkeypatch.setenv("MUSICBERT_DB", url)
    assert default_url() == url
    with open_catalog() as catalog:
        assert catalog.url == url
    assert (tmp_path / "other.db").exists()
    assert not (isolated_home / "catalog.db").exists()


def test_wal_and_foreign_keys_are_really_on():
    with open_catalog() as catalog, catalog.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_foreign_keys_are_enforced_and_cascade(catalog_url):
    with open_catalog(catalog_url) as catalog:
        with pytest.raises(IntegrityError), catalog.session() as session:
            session.add(Tag(track_id=12345, name="orphan"))
        with catalog.session() as session:
            track = _track("/a.wav", "A")
            track.tags.append(Tag(name="jazz", kind="genre"))
            session.add(track)
        with catalog.session() as session:
            session.execute(text("DELETE FROM tracks"))  # the database cascades, not the ORM
        with catalog.session() as session:
            assert session.scalars(select(Tag)).all() == []


def test_session_rolls_back_on_error(catalog_url):
    with open_catalog(catalog_url) as catalog:
        with pytest.raises(RuntimeError), catalog.session() as session:
            session.add(_track("/a.wav", "A"))
            session.flush()
            raise RuntimeError("boom")
        with catalog.session() as session:
            assert session.scalars(select(Track)).all() == []


def test_orm_round_trip_every_table(catalog_url):
    with open_catalog(catalog_url) as catalog:
        with catalog.session() as session:
            artist = Artist(name="Maxstack")
            album = Album(title="Singularity", artist=artist, year=2012)
            track = _track(
                "/music/ø.ogg",
                "Sìngularity ✨",
                artist=artist,
                album=album,
                duration=123.5,
                licence="CC BY-SA 3.0",
            )
            track.tags.append(Tag(name="electronic", kind="genre", origin="model", confidence=0.9))
            track.features = AudioFeatures(tempo=128.0, key="A", mode="minor")
            track.embeddings.append(Embedding(model_id="m", dim=2, vector=b"\x00" * 8))
            playlist = Playlist(name="mine")
            playlist.items.append(PlaylistItem(track=track, position=0))
            session.add_all([track, playlist, PlayHistory(track=track, source="cli")])
        with catalog.session() as session:
            got = session.scalars(select(Track)).one()
            assert got.title == "Sìngularity ✨"
            assert got.title_key == "singularity"
            assert got.artist.name_key == "maxstack"
            assert got.album.title_key == "singularity"
            assert got.tags[0].confidence == pytest.approx(0.9)
            assert got.features.mode == "minor"
            assert got.embeddings[0].vector == b"\x00" * 8
            assert session.scalars(select(Playlist)).one().items[0].track_id == got.id


def test_name_keys_follow_renames_and_core_inserts(catalog_url):
    from sqlalchemy import insert

    with open_catalog(catalog_url) as catalog, catalog.session() as session:
        artist = Artist(name="Sigur Ros")
        session.add(artist)
        session.flush()
        artist.name = "Sigur Rós"
        session.execute(insert(Artist).values(name="Björk"))
        session.flush()
        keys = dict(session.execute(select(Artist.name, Artist.name_key)).all())
    assert keys == {"Sigur Rós": "sigur ros", "Björk": "bjork"}


def test_artist_less_albums_are_unique_by_title(catalog_url):
    with open_catalog(catalog_url) as catalog:
        with catalog.session() as session:
            session.add(Album(title="Mixtape"))
        with pytest.raises(IntegrityError), catalog.session() as session:
            session.add(Album(title="Mixtape"))


@pytest.mark.parametrize(
    "url, words",
    [
        ("not a url", "cannot use database URL"),
        ("nosuchdb://x/y", "cannot use database URL"),
        ("sqlite:////no/such/directory/catalog.db", "cannot open the catalog"),
    ],
)
def test_bad_urls_give_config_errors(url, words):
    with pytest.raises(ConfigError, match=words):
        open_catalog(url)


def test_a_file_that_is_not_a_database(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(ConfigError, match="not a database"):
        open_catalog(f"sqlite:///{path}")
    assert path.read_text().startswith("these are my notes")


def test_unreachable_server_gives_config_error_without_password():
    with socket.socket() as sock:  # a loopback port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql+psycopg2://me:secret@127.0.0.1:{port}/music"
    with pytest.raises(ConfigError, match="cannot open the catalog") as info:
        open_catalog(url)
    assert "secret" not in str(info.value)
    assert "***" in safe_url(url)


def test_database_of_another_program_is_refused(tmp_path):
    import sqlite3

    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE tracks (x TEXT)")
    with pytest.raises(ConfigError, match="not made by musicbert"):
        open_catalog(f"sqlite:///{path}")


def test_opening_waits_for_another_writer_of_a_new_file(tmp_path):
    """Switching a new file to WAL while another program writes it must wait, not fail."""
    import sqlite3
    import threading

    path = tmp_path / "busy.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE notes (x TEXT)")  # still in the rollback-journal mode
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO notes VALUES ('writing')")
    release = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    release.start()
    try:
        with open_catalog(f"sqlite:///{path}") as catalog, catalog.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        release.join()
        other.close()
