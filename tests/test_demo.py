"""The demo library: renders carry their metadata, packages get licence and attribution.

The small builds run on a SQLite and on a PostgreSQL catalog (``catalog_url``); the full
library (minutes of rendering and analysis) is built once, into SQLite."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import select

from catalog.db import open_catalog
from catalog.demo import (
    WESNOTH_DIR,
    _with_composer_attribution,
    build_demo_library,
    demo_complete,
    starter_pieces,
)
from catalog.demo_pieces import PIECES, Piece
from catalog.ingest import ingest
from catalog.models import Track
from catalog.queries import track_rows
from tests.catalogs import backend_catalog
from tests.real_parts import needs

needs_fluidsynth = needs(shutil.which("fluidsynth") is not None, "fluidsynth is not installed")
needs_wesnoth = needs(WESNOTH_DIR.is_dir(), "wesnoth-1.16-music is not installed")

SMALL = (
    Piece("bach/bwv66.6", "Chorale BWV 66.6", "Johann Sebastian Bach", "Test Chorales",
          "baroque chorale", (19,), year=1730, tempo_scale=0.7),
    Piece("ryansMammoth/AcaciaReel", "Acacia Reel", "Traditional", "Test Tunes",
          "fiddle reel", (110,), licence="Public domain (test)", year=1883),
)  # fmt: skip


catalog = pytest.fixture(name="catalog")(backend_catalog)


@pytest.fixture
def sqlite_catalog(tmp_path):
    cat = open_catalog(f"sqlite:///{tmp_path / 'demo.db'}")
    yield cat
    cat.close()


@needs_fluidsynth
def test_small_demo_build_records_everything_and_is_cached(catalog):
    assert not demo_complete(catalog)
    summary = build_demo_library(catalog, pieces=SMALL, include_packages=False, progress=False)
    assert (summary.rendered, summary.cached, summary.render_failed) == (2, 0, [])
    assert summary.ingest.added == 2
    assert demo_complete(catalog)  # the marker the chat checks before building again
    from assistant.commands.chat import start_demo_library

    assert start_demo_library(catalog, None) is None  # complete: nothing is started
    with catalog.session() as s:
        ids = s.scalars(select(Track.id)).all()
    tracks = {t.score_ref: t for t in track_rows(catalog, ids)}
    chorale = tracks["bach/bwv66.6"]
    assert chorale.title == "Chorale BWV 66.6"
    assert chorale.composer == chorale.artist.name == "Johann Sebastian Bach"
    assert chorale.licence.startswith("Public domain")
    assert chorale.source == "music21 corpus: bach/bwv66.6"
    assert "FluidSynth" in chorale.attribution and chorale.year == 1730
    tags = {(t.name, t.kind, t.origin) for t in chorale.tags}
    assert ("church organ", "instrument", "file") in tags
    assert ("baroque chorale", "genre", "file") in tags
    assert ("key: f# minor", "other", "file") in tags
    assert ("tempo: 67 bpm", "other", "file") in tags
    assert tracks["ryansMammoth/AcaciaReel"].licence == "Public domain (test)"

    again = build_demo_library(catalog, pieces=SMALL, include_packages=False, progress=False)
    assert (again.rendered, again.cached) == (0, 2)
    assert (again.ingest.added, again.ingest.unchanged) == (0, 2)


def test_starter_pieces_are_one_per_album_in_table_order():
    first = starter_pieces(PIECES)
    assert len(first) == len({p.album for p in PIECES}) >= 6
    assert [p.album for p in first] == list(dict.fromkeys(p.album for p in PIECES))


def test_piece_table_has_variety_and_no_restricted_sources():
    assert len(PIECES) >= 40
    refs = [p.ref for p in PIECES]
    assert len(set(refs)) == len(refs)
    assert not any(r.startswith(("essenFolksong", "palestrina")) for r in refs)
    genres = {p.genre.split()[-1] for p in PIECES}
    assert {"chorale", "quartet", "piano", "reel", "vocal"} <= genres
    assert all(p.licence and p.composer and p.title for p in PIECES)


@needs_wesnoth
def test_wesnoth_tracks_get_licence_composer_and_attribution(catalog):
    path = WESNOTH_DIR / "defeat.ogg"  # an 8-second cue
    summary = ingest(catalog, [path], workers=1, progress=False,
                     overrides=_with_composer_attribution)  # fmt: skip
    assert summary.added == 1
    with catalog.session() as s:
        track = s.scalars(select(Track)).one()
        assert track.licence == "GPL-2+"
        assert track.artist.name == track.composer == "Timothy Pinkham"
        assert track.attribution.startswith("Timothy Pinkham (2005), The Battle for Wesnoth")
        assert "wesnoth-1.16-music" in track.source


@pytest.mark.slow
@needs_fluidsynth
@needs_wesnoth
def test_full_demo_library(sqlite_catalog):
    """SQLite only, for CI's time: the same build as above, 107 tracks long."""
    catalog = sqlite_catalog
    summary = build_demo_library(catalog, progress=False)
    assert summary.rendered + summary.cached >= 40
    assert summary.sources[str(WESNOTH_DIR)] == 41
    with catalog.session() as s:
        tracks = s.scalars(select(Track)).all()
    assert len(tracks) >= 41 + 16 + 40
    assert all(t.licence and t.source and t.attribution for t in tracks)
