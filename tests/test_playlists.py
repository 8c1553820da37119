"""Playlists out and in: M3U8 and XSPF files read by parsers this project did not write
(the ``m3u8`` package from PyPI; XSPF checked with xml.etree against the XSPF 1 rules),
real audio files on disk, import matched by path then by artist and title; the
``musicbert playlist`` command with --json; "export road trip" in the chat. Each runs on
SQLite and on PostgreSQL (``catalog_url``)."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from assistant.cli import main
from catalog.db import open_catalog
from catalog.models import Track
from catalog.playlists import (
    XSPF_NS,
    add_tracks,
    export_playlist,
    import_playlist,
    list_playlists,
    playlist_entries,
)
from catalog.queries import get_or_create_album, get_or_create_artist
from tests.audio_fixtures import write_audio

m3u8 = pytest.importorskip("m3u8", reason="the m3u8 package (dev dependency) reads M3U8 back")

SONGS = [  # title, artist, seconds; one name with accents and a comma, one path with a space
    ("Nebula", "Maxstack", 3.0),
    ("Für Elise, WoO 59", "Ludwig van Beethoven", 2.0),
    ("Battle Music", "Aleksi Aubry-Carlson", 4.0),
]


@pytest.fixture
def library(tmp_path, catalog_url):
    catalog = open_catalog(catalog_url)
    music = tmp_path / "music" / "my songs"
    music.mkdir(parents=True)
    ids = []
    with catalog.session() as s:
        for n, (title, artist, secs) in enumerate(SONGS):
            path = write_audio(music / f"{n:02d} {title[:6]}.flac", seconds=secs, seed=n)
            a = get_or_create_artist(s, artist)
            t = Track(
                path=str(path),
                content_hash=f"{n:064x}",
                title=title,
                artist=a,
                album=get_or_create_album(s, "Album", a, 2020),
                duration=secs,
            )
            s.add(t)
            s.flush()
            ids.append(t.id)
    add_tracks(catalog, "Road Trip", [ids[2], ids[0], ids[1]])
    yield catalog, ids, tmp_path, catalog_url
    catalog.close()


def test_m3u8_export_is_read_by_the_m3u8_package(library):
    catalog, ids, tmp, _ = library
    out = tmp / "out" / "road.m3u8"
    path, n = export_playlist(catalog, "road trip", out)
    assert path == out and n == 3
    parsed = m3u8.load(str(out))
    assert [round(s.duration) for s in parsed.segments] == [4, 3, 2]
    assert [s.title for s in parsed.segments] == [
        "Aleksi Aubry-Carlson - Battle Music",
        "Maxstack - Nebula",
        "Ludwig van Beethoven - Für Elise, WoO 59",
    ]
    for seg in parsed.segments:
        assert not Path(seg.uri).is_absolute()
        assert (out.parent / seg.uri).resolve().is_file()  # the real file, found from the list
    export_playlist(catalog, "Road Trip", out, relative=False)
    parsed = m3u8.load(str(out))
    assert all(Path(s.uri).is_absolute() and Path(s.uri).is_file() for s in parsed.segments)


def test_xspf_export_follows_the_xspf_rules(library):
    catalog, ids, tmp, _ = library
    for relative in (True, False):
        out, n = export_playlist(catalog, "Road Trip", tmp / "x" / "road.xspf", relative=relative)
        root = ET.parse(out).getroot()
        assert root.tag == f"{{{XSPF_NS}}}playlist" and root.get("version") == "1"
        tracks = root.findall(f"{{{XSPF_NS}}}trackList/{{{XSPF_NS}}}track")
        assert len(tracks) == n == 3
        for t in tracks:
            loc = t.find(f"{{{XSPF_NS}}}location").text
            # a URI (RFC 3986): no raw spaces; absolute ones are file: URIs
            assert " " not in loc
            if relative:
                file = out.parent / urllib.parse.unquote(loc)
            else:
                assert loc.startswith("file:///")
                file = Path(urllib.request.url2pathname(urllib.parse.urlparse(loc).path))
            assert file.resolve().is_file()
            ms = t.find(f"{{{XSPF_NS}}}duration").text
            assert ms.isdigit()  # non-negative integer milliseconds
        titles = [t.find(f"{{{XSPF_NS}}}title").text for t in tracks]
        assert titles == ["Battle Music", "Nebula", "Für Elise, WoO 59"]
        assert tracks[0].find(f"{{{XSPF_NS}}}creator").text == "Aleksi Aubry-Carlson"
        assert tracks[2].find(f"{{{XSPF_NS}}}duration").text == "2000"


def test_import_matches_by_path_then_by_artist_and_title_and_reports_the_rest(library):
    catalog, ids, tmp, _ = library
    out, _ = export_playlist(catalog, "Road Trip", tmp / "a" / "road.m3u8")
    for fmt in ("m3u8", "xspf"):
        exported, _ = export_playlist(catalog, "Road Trip", tmp / "a" / f"copy.{fmt}")
        result = import_playlist(catalog, exported, name=f"Copy {fmt}")
        assert result.matched == [ids[2], ids[0], ids[1]] and result.by_path == 3
        assert result.unmatched == [] and result.created
    # a list made elsewhere: moved files, one track the library lacks
    other = tmp / "elsewhere.m3u"
    other.write_text(
        "#EXTM3U\n"
        "#EXTINF:300,MAXSTACK - nebula\n/other/disk/Nebula.mp3\n"
        "#EXTINF:200,Radiohead - Airbag\n/other/disk/airbag.mp3\n"
        "#EXTINF:-1,Battle Music\nD:\\Music\\battle.ogg\n",
        encoding="utf-8",
    )
    result = import_playlist(catalog, other)
    assert result.name == "elsewhere"
    assert result.matched == [ids[0], ids[2]]
    assert result.by_path == 0 and result.by_name == 2
    assert result.unmatched == ["Radiohead - Airbag"]
    names = {p.name: p.tracks for p in list_playlists(catalog)}
    assert names == {"Road Trip": 3, "Copy m3u8": 3, "Copy xspf": 3, "elsewhere": 2}


def test_the_playlist_command_with_json(library, capsys):
    catalog, ids, tmp, url = library
    assert main(["--db", url, "playlist", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"name": "Road Trip", "tracks": 3, "seconds": 9.0}
    ]
    assert main(["--db", url, "playlist", "show", "road trip", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [t["title"] for t in shown["tracks"]] == ["Battle Music", "Nebula", "Für Elise, WoO 59"]
    out = tmp / "cli"
    out.mkdir()
    assert main(["--db", url, "playlist", "export", "Road Trip", "-o", str(out),
                 "--format", "xspf", "--json"]) == 0  # fmt: skip
    written = json.loads(capsys.readouterr().out)
    assert written["tracks"] == 3 and Path(written["file"]).name == "Road-Trip.xspf"
    assert main(["--db", url, "playlist", "import", written["file"], "--name", "Back",
                 "--json"]) == 0  # fmt: skip
    imported = json.loads(capsys.readouterr().out)
    assert imported["matched"] == [ids[2], ids[0], ids[1]] and imported["unmatched"] == []
    assert main(["--db", url, "playlist", "show", "nothing here"]) == 2
    assert "no playlist called" in capsys.readouterr().err


def test_export_in_the_chat(catalog_url):
    from tests.dialogue_library import make_assistant

    catalog = open_catalog(catalog_url)
    try:
        bot = make_assistant(catalog)
        bot.handle("play Nebula")
        assert bot.handle("add this to road trip").parse.intent == "playlist_add"
        for text, suffix in (("export road trip", ".m3u8"), ("save road trip as xspf", ".xspf")):
            reply = bot.handle(text)
            assert reply.parse.intent == "playlist_export", reply.parse
            path = Path(reply.data["file"])
            assert path.suffix == suffix and path.is_file() and str(path) in reply.text
        name, entries = playlist_entries(catalog, "road trip")
        assert [e.title for e in entries] == ["Nebula"]
        shown = bot.handle("find something calm").tracks
        reply = bot.handle("save these as late night")
        assert (
            reply.parse.intent == "playlist_add" and reply.parse.first("playlist") == "late night"
        )
        assert [e.track_id for e in playlist_entries(catalog, "late night")[1]] == [
            t.id for t in shown
        ]
        assert bot.handle("export late night").data["file"].endswith("late-night.m3u8")
        assert bot.handle("export the jazz nights playlist").text.startswith("Sorry")
    finally:
        catalog.close()


def test_names_every_database_can_store(library, capsys):
    """A name longer than the column or holding NUL is stored cleaned and cut (PostgreSQL
    refuses both; SQLite kept them) and found again by the same words."""
    catalog, ids, tmp, url = library
    long = "Summer Road " * 40
    name, _, count, created = add_tracks(catalog, long, [ids[0]])
    assert created and count == 1 and name == " ".join(long.split())[:256].strip()
    assert add_tracks(catalog, long, [ids[1]])[2:] == (2, False)
    name, _, _, created = add_tracks(catalog, "late\x00night  drive", [ids[0]])
    assert created and name == "latenight drive"
    assert add_tracks(catalog, "LATENIGHT drive", [ids[1]])[2:] == (2, False)
    out, _ = export_playlist(catalog, "Road Trip", tmp / "road.m3u8")
    assert main(["--db", url, "playlist", "import", str(out), "--name", "x" * 300, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["matched"] == [ids[2], ids[0], ids[1]]
    assert {p.name: p.tracks for p in list_playlists(catalog)}["x" * 256] == 3
