"""Entity extraction: catalog gazetteer, fuzzy names, patterns, intent gates, overlaps."""

from __future__ import annotations

import pytest

from assistant.nlu import build_extractor
from assistant.nlu.entity_patterns import decade_value
from assistant.nlu.rasa_format import load_nlu
from catalog.db import open_catalog
from catalog.models import Playlist, Tag, Track
from catalog.queries import get_or_create_album, get_or_create_artist


@pytest.fixture(scope="module")
def data():
    return load_nlu()


@pytest.fixture
def extractor(data, catalog_url):
    catalog = open_catalog(catalog_url)
    with catalog.session() as s:
        artist = get_or_create_artist(s, "Sigur Rós")
        album = get_or_create_album(s, "Ágætis byrjun", artist, 1999)
        t = Track(path="/m/1.ogg", content_hash="1" * 64, title="Svefn-g-englar", artist=artist,
                  album=album)  # fmt: skip
        t.tags.append(Tag(name="post-rock", kind="genre"))
        s.add(t)
        s.add(Playlist(name="Sunday Morning"))
    return build_extractor(data, catalog)


def ents(extractor, text, intent=None):
    return [(e.entity, text[e.start : e.end], e.value) for e in extractor.extract(text, intent)]


def test_catalog_names_with_accents_case_and_typos(extractor):
    assert ents(extractor, "play svefn-g-englar by sigur ros", "play_music") == [
        ("track", "svefn-g-englar", "Svefn-g-englar"),
        ("artist", "sigur ros", "Sigur Rós"),
    ]
    assert ents(extractor, "some post-rock please", "play_music") == [
        ("genre", "post-rock", "post-rock")
    ]
    assert ("album", "Agaetis byrjun", "Ágætis byrjun") in ents(
        extractor, "play Agaetis byrjun", "play_music"
    )
    # typos and partial titles resolve to the library's spelling
    assert ents(extractor, "play Knols by maxstak", "play_music") == [
        ("track", "Knols", "Knolls"),
        ("artist", "maxstak", "Maxstack"),
    ]
    assert ents(extractor, "play Wanderer", "play_music") == [("track", "Wanderer", "Wanderer")]


def test_longest_span_wins_and_title_case_breaks_ties(extractor):
    # "Battle Music" (a title) beats "battle" inside it; "The Knolls of Doldesh" whole
    assert ents(extractor, "play The Knolls of Doldesh", "play_music") == [
        ("track", "The Knolls of Doldesh", "The Knolls of Doldesh")
    ]
    assert ents(extractor, "find sad piano tracks", "search_music") == [
        ("mood", "sad", "sad"),
        ("instrument", "piano", "piano"),
    ]
    assert ents(extractor, "which is slower, Love Theme or Sad?", "compare_tracks") == [
        ("track", "Love Theme", "Love Theme"),
        ("track", "Sad", "Sad"),
    ]


def test_patterns_numbers_decades_tempi_ordinals(extractor):
    assert ents(extractor, "find tracks around 120 bpm from the 80s", "search_music") == [
        ("number", "120", "120"),
        ("attribute", "bpm", "tempo"),
        ("decade", "80s", "1980s"),
    ]
    assert ents(extractor, "music from the nineties", "play_music") == [
        ("decade", "nineties", "1990s")
    ]
    assert ents(extractor, "the second one", "select_item") == [("number", "second", "2")]
    assert ents(extractor, "the 3rd", "select_item") == [("number", "3rd", "3")]
    assert ents(extractor, "the last one", "select_item") == [("number", "last", "-1")]
    assert ents(extractor, "how fast is Frantic", "ask_track_info") == [
        ("attribute", "fast", "tempo"),
        ("track", "Frantic", "Frantic"),
    ]
    assert [decade_value(x) for x in ("80s", "'70s", "2010s", "00s", "1960s", "x")] == [
        "1980s", "1970s", "2010s", "2000s", "1960s", None,
    ]  # fmt: skip


def test_a_title_inside_a_description_is_not_a_name(extractor):
    # "battle music" after a mood and a genre continues the description ...
    for intent in (None, "search_music", "ask_content"):
        assert ents(extractor, "epic orchestral battle music", intent) == [
            ("mood", "epic", "epic"),
            ("genre", "orchestral", "orchestral"),
        ]
    assert ents(extractor, "calm and sad love theme", "search_music") == [
        ("mood", "calm", "calm"),
        ("mood", "sad", "sad"),
    ]
    # ... but the same words are the track when written as a title or led in otherwise
    assert ents(extractor, "epic Battle Music", "play_music") == [
        ("mood", "epic", "epic"),
        ("track", "Battle Music", "Battle Music"),
    ]
    assert ents(extractor, "play battle music", "play_music") == [
        ("track", "battle music", "Battle Music")
    ]
    assert ents(extractor, "is battle music epic?", "ask_content") == [
        ("track", "battle music", "Battle Music"),
        ("mood", "epic", "epic"),
    ]
    assert ents(extractor, "what key is Battle Music in", "ask_track_info") == [
        ("attribute", "key", "key"),
        ("track", "Battle Music", "Battle Music"),
    ]


def test_playlist_names_from_context_and_catalog(extractor):
    assert ents(extractor, "add this to my road trip playlist", "playlist_add") == [
        ("playlist", "road trip", "road trip")
    ]
    assert ents(extractor, "make a calm playlist called Late Drive", "playlist_create") == [
        ("mood", "calm", "calm"),
        ("playlist", "Late Drive", "Late Drive"),
    ]
    assert ents(extractor, "add Nebula to sunday morning", "playlist_add") == [
        ("track", "Nebula", "Nebula"),
        ("playlist", "sunday morning", "Sunday Morning"),
    ]
    assert ents(extractor, "add it to the playlist", "playlist_add") == []


def test_intent_gates(extractor):
    # "louder" is a volume command when controlling playback, a direction when refining
    assert ents(extractor, "louder please", "playback_control") == [
        ("control", "louder", "volume_up")
    ]
    assert ents(extractor, "louder please", "refine") == [("direction", "louder", "louder")]
    assert ents(extractor, "skip", "playback_control") == [("control", "skip", "next")]
    assert ents(extractor, "what is 2 plus 2", "out_of_scope") == []
    assert ents(extractor, "more like this", "more_like_this") == []


def test_awkward_text_never_fails(extractor):
    for text in ["", "   ", "😀🎵🎶", "שלום עולם", "'; DROP TABLE tracks; --", "x" * 10_000,
                 "\x00\x01", "Ⅻ ⅷ ½ ٣"]:  # fmt: skip
        for intent in (None, "play_music", "refine"):
            for e in extractor.extract(text, intent):
                assert 0 <= e.start < e.end <= len(text)
