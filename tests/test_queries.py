"""catalog.queries and catalog.names on a real catalog, SQLite and PostgreSQL (``catalog_url``)."""

from __future__ import annotations

import multiprocessing

import pytest
from sqlalchemy import func, select

from catalog.db import open_catalog
from catalog.models import Album, Artist
from catalog.names import clean_name, fold, name_key
from catalog.queries import (
    find_tracks,
    get_or_create_album,
    get_or_create_artist,
    library_stats,
    name_score,
    track_rows,
)
from tests.catalog_sample import SAMPLE, fill_sample
from tests.catalogs import backend_catalog

catalog = pytest.fixture(name="catalog")(backend_catalog)


@pytest.fixture
def sample(catalog) -> dict[str, int]:
    return fill_sample(catalog)


# ------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name, key",
    [
        ("Beyoncé", "beyonce"),
        ("  Sigur   Rós ", "sigur ros"),
        ("AC/DC", "ac dc"),
        ("Ágætis byrjun", "agaetis byrjun"),
        ("Mötley Crüe", "motley crue"),
        ("Straße", "strasse"),
        ("Łódź", "lodz"),
        ("坂本龍一", "坂本龍一"),
        ("!!!", "!!!"),
        ("✨ ✨", "✨ ✨"),
    ],
)
def test_name_keys(name, key):
    assert name_key(name) == key


def test_fold_and_clean():
    assert fold("Für   Elise!") == "fur elise"
    assert clean_name("  a\x00b \t c ") == "ab c"
    assert name_key(None) is None


def test_name_score_is_strict_with_short_words():
    assert name_score("bethoven", "ludwig van beethoven") >= 85
    assert name_score("a", "halo") < 60
    assert name_score("mozart", "maxstack") < 60


# ---------------------------------------------------------- get or create


def test_get_or_create_artist_reuses_rows(catalog):
    with catalog.session() as s:
        first = get_or_create_artist(s, "  Sigur  Rós ")
        again = get_or_create_artist(s, "Sigur Rós")
        assert first is again and first.name == "Sigur Rós" and first.name_key == "sigur ros"
        assert get_or_create_artist(s, None) is None
        assert get_or_create_artist(s, " \x00 ") is None
        assert len(get_or_create_artist(s, "x" * 2000).name) == 512
    with catalog.session() as s:
        assert get_or_create_artist(s, "Sigur Rós").id == first.id
        assert s.scalar(select(func.count(Artist.id))) == 2


def test_get_or_create_album_per_artist_and_artistless(catalog):
    with catalog.session() as s:
        adele = get_or_create_artist(s, "Adele")
        other = get_or_create_artist(s, "Other")
        a = get_or_create_album(s, "25", adele)
        b = get_or_create_album(s, "25", other, 2015)
        none1 = get_or_create_album(s, "Mixtape", None)
        none2 = get_or_create_album(s, "Mixtape", None, 2004)
        assert a.id != b.id and none1 is none2
        assert none2.year == 2004  # a missing year is filled in
        assert get_or_create_album(s, "25", adele, 1999).year == 1999
        assert get_or_create_album(s, "", adele) is None
    with catalog.session() as s:
        assert s.scalar(select(func.count(Album.id))) == 3


def test_get_or_create_album_with_an_unflushed_artist(catalog):
    with catalog.session() as s:
        artist = Artist(name="New")
        s.add(artist)
        album = get_or_create_album(s, "First", artist)
        assert album.artist_id == artist.id is not None


def _add_names(url: str, worker: int, queue) -> None:
    """One of several processes adding the same names at the same time."""
    try:
        with open_catalog(url) as cat:
            for round_ in range(15):
                with cat.session() as s:
                    for n in range(5):
                        artist = get_or_create_artist(s, f"Artist {n}")
                        get_or_create_album(s, f"Album {n}", artist)
                        get_or_create_album(s, f"Loose {n}", None)
                    get_or_create_artist(s, f"Only {worker} {round_}")
        queue.put("ok")
    except Exception as exc:  # reported to the parent, which fails the test
        queue.put(repr(exc))


def test_concurrent_get_or_create_makes_each_name_once(catalog):
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_add_names, args=(catalog.url, w, queue)) for w in range(3)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert results == ["ok"] * 3
    with catalog.session() as s:
        assert s.scalar(select(func.count(Artist.id))) == 5 + 3 * 15
        assert s.scalar(select(func.count(Album.id))) == 10


# ---------------------------------------------------------------- track rows


def test_track_rows_keeps_order_and_loads_relations(catalog, sample):
    ids = [sample["Hello"], 99999, sample["Halo"], sample["Hello"]]
    rows = track_rows(catalog, ids)
    assert [t.id for t in rows] == [sample["Hello"], sample["Halo"]]
    halo = rows[1]  # detached now: only eager-loaded relations can be read
    assert halo.artist.name == "Beyoncé"
    assert halo.album.artist.name == "Beyoncé"
    assert halo.features.tempo == 80.0
    assert sorted((t.name, t.origin) for t in halo.tags) == [("pop", "file"), ("pop", "model")]
    assert rows[0].features is None
    assert track_rows(catalog, []) == []


def test_track_rows_in_a_callers_session(catalog, sample):
    with catalog.session() as s:
        (row,) = track_rows(catalog, [sample["Halo"]], session=s)
        assert row in s and row.embeddings[0].model_id == "test-model"


def test_track_rows_many_ids(catalog, sample):
    ids = list(range(1, 2000)) + [sample["Tape One"]]
    assert {t.id for t in track_rows(catalog, ids)} == set(sample.values())


# ------------------------------------------------------------- find tracks


@pytest.mark.parametrize(
    "query, field, kind, names",
    [
        ("Halo", "title", "exact", ["Halo"]),
        ("halo", "title", "case", ["Halo"]),
        ("beyonce", "artist", "accent", ["Beyoncé"]),
        ("SIGUR ROS", "artist", "accent", ["Sigur Rós"]),
        ("acdc", "artist", "accent", ["AC/DC"]),
        ("fur elise", "title", "accent", ["Für Elise"]),
        ("beethoven", "artist", "partial", ["Ludwig van Beethoven"]),
        ("moonlight", "title", "partial", ["Moonlight Sonata, Op. 27 No. 2"]),
        ("agaetis", "album", "partial", ["Ágætis byrjun"]),
        ("bethoven", "artist", "fuzzy", ["Ludwig van Beethoven"]),
        ("hels bels", "title", "fuzzy", ["Hells Bells"]),
        ("beyonse", "artist", "fuzzy", ["Beyoncé"]),
    ],
)
def test_find_tracks_kinds(catalog, sample, query, field, kind, names):
    found = find_tracks(catalog, query, field)
    assert found and found.kind == kind
    assert found.names[: len(names)] == names


def test_find_tracks_returns_tracks_in_album_order(catalog, sample):
    found = find_tracks(catalog, "ac/dc", "artist")
    assert found.track_ids == [sample["Hells Bells"], sample["Back in Black"]]
    assert find_tracks(catalog, "Back in Black", "album").track_ids == found.track_ids
    title = find_tracks(catalog, "Back in Black", "title")
    assert title.kind == "exact" and title.track_ids == [sample["Back in Black"]]


def test_exact_spelling_comes_before_other_spellings(catalog):
    with catalog.session() as s:
        for path, title in [("/1.ogg", "HALO"), ("/2.ogg", "Halo"), ("/3.ogg", "Haló")]:
            from catalog.models import Track

            s.add(Track(path=path, content_hash="0" * 64, title=title))
    found = find_tracks(catalog, "Halo")
    assert [(m.name, m.kind) for m in found.matches] == [
        ("Halo", "exact"),
        ("HALO", "case"),
        ("Haló", "accent"),
    ]


def test_unknown_names_get_suggestions(catalog, sample):
    found = find_tracks(catalog, "Hallo Bells", "title")
    assert not found and found.kind is None and found.track_ids == []
    assert "Hells Bells" in found.suggestions
    assert len(found.suggestions) <= 3
    nothing = find_tracks(catalog, "Mozart", "artist")
    assert not nothing and nothing.suggestions == []


def test_near_miss_matches_also_suggest_others(catalog, sample):
    found = find_tracks(catalog, "helo", "title")
    assert found.kind == "fuzzy" and found.names == ["Hello"]
    assert "Halo" in found.suggestions


def test_find_tracks_edge_cases(catalog, sample, tmp_path):
    assert not find_tracks(catalog, "   ", "title")
    with pytest.raises(ValueError, match="field"):
        find_tracks(catalog, "x", "genre")
    with open_catalog(f"sqlite:///{tmp_path / 'empty.db'}") as empty:
        assert not find_tracks(empty, "Halo")


# ------------------------------------------------------------------- stats


def test_library_stats_counts(catalog, sample):
    stats = library_stats(catalog)
    assert stats["tracks"] == len(SAMPLE)
    assert stats["artists"] == 5 and stats["albums"] == 6
    assert stats["tags"] == 7
    assert stats["tag_rows_by_origin"] == {"file": 11, "model": 1}
    assert stats["total_duration"] == pytest.approx(sum(row[4] for row in SAMPLE))
    assert stats["total_duration_text"] == "47:13"
    assert stats["analysed"] == 1 and stats["embeddings"] == {"test-model": 1}
    assert stats["playlists"] == 1 and stats["plays"] == 1
    by_artist = {a["artist"]: (a["tracks"], a["duration"]) for a in stats["by_artist"]}
    assert by_artist["Ludwig van Beethoven"] == (2, 1080.0)
    assert by_artist[None] == (1, 30.0)
    by_album = {(a["album"], a["artist"]): a["tracks"] for a in stats["by_album"]}
    assert by_album[("Back in Black", "AC/DC")] == 2 and by_album[("Mixtape", None)] == 1
    by_tag = {(t["tag"], t["kind"]): t["tracks"] for t in stats["by_tag"]}
    assert by_tag[("pop", "genre")] == 2  # Halo counted once though tagged twice
    licences = {(g["licence"], g["source"]): g["tracks"] for g in stats["by_licence"]}
    assert licences[("public domain", "music21 corpus")] == 2
    assert licences[(None, None)] == 4
    assert len(stats["track_list"]) == len(SAMPLE)
    svefn = next(t for t in stats["track_list"] if t["title"] == "Svefn-g-englar")
    assert (svefn["licence"], svefn["source"], svefn["attribution"]) == (
        "CC BY 3.0",
        "web",
        "Sigur Rós",
    )


def test_library_stats_top_and_empty(catalog, sample, tmp_path):
    top = library_stats(catalog, top=2)
    assert len(top["by_artist"]) == len(top["by_album"]) == len(top["by_tag"]) == 2
    assert len(top["track_list"]) == len(SAMPLE)
    assert top["by_artist"][0]["tracks"] == 2
    with open_catalog(f"sqlite:///{tmp_path / 'empty.db'}") as empty:
        stats = library_stats(empty)
    assert stats["tracks"] == 0 and stats["total_duration"] == 0.0
    assert stats["by_artist"] == [] and stats["track_list"] == []
