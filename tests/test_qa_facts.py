"""Catalog facts, aggregates and comparisons on a small real SQLite catalog."""

from __future__ import annotations

import pytest

from tests.qa_library import ask, qa_engine

engine = pytest.fixture(scope="module", name="engine")(qa_engine)


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("who performs Nebula?", "Maxstack"),
        ("who composed Battle Epic?", "Doug Kaufman"),
        ("what album is Awakening on?", "Endgame: Singularity Original Soundtrack"),
        ("what year is battle epic from?", 2007),
        ("how long is Awakening?", 208.0),
        ("what licence is Nebula under?", "CC BY-SA 3.0"),
        ("whats the licence of nebul", "CC BY-SA 3.0"),  # typo in the title
    ],
)
def test_catalog_facts(engine, question, answer):
    reply = ask(engine, question)
    assert reply.data["known"] is True, reply.text
    assert reply.data["answer"] == answer
    assert reply.tracks and reply.tracks[0].title in reply.text


def test_album_listing(engine):
    reply = ask(engine, "what's on The Battle for Wesnoth OST?")
    assert sorted(reply.data["answer"]) == ["Battle Epic", "Defeat", "Defeat"]


def test_unknown_track_says_so_and_suggests(engine):
    reply = ask(engine, "who composed Nebulla Rising?")
    assert reply.data["known"] is False
    assert reply.text.startswith("I don't know")
    reply = ask(engine, 'how long is "Nebulos"?')
    assert reply.data["reason"] == "no_track"
    assert "Nebula" in reply.data["suggestions"]


def test_ambiguous_title_asks_which(engine):
    reply = ask(engine, "what year is Defeat from?")
    assert reply.data["reason"] == "ambiguous"
    assert "Timothy Pinkham" in reply.text and "Ryan Reilly" in reply.text
    reply = ask(engine, "what year is Defeat by Ryan Reilly from?")
    assert reply.data["answer"] == 2007


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("how many tracks by Maxstack are there?", 3),
        ("how many tracks are in the library?", 7),
        ("how many artists are there?", 5),
        ("what is the total length of Endgame: Singularity Original Soundtrack?", 548.0),
        ("what is the fastest track?", "Battle Epic"),
        ("which is the longest track by Maxstack?", "Nebula"),
        ("what's the quietest track?", "Defeat"),
        ("what is the oldest track?", "Defeat"),
        ("how many tracks are in a minor key?", 5),
    ],
)
def test_aggregates(engine, question, answer):
    reply = ask(engine, question)
    assert reply.data["type"] == "aggregate", reply.data
    assert reply.data["answer"] == answer, reply.text


def test_lists_by_key_and_tempo(engine):
    minor = ask(engine, "which tracks are in a minor key?").data["answer"]
    assert sorted(minor) == ["Awakening", "Battle Epic", "Chorale BWV 66.6", "Defeat", "Nebula"]
    around = ask(engine, "anything around 120 bpm?").data["answer"]
    assert sorted(around) == ["Awakening", "Nebula"]
    fsharp = ask(engine, "tracks in F# minor").data["answer"]  # Gb minor is the same key
    assert sorted(fsharp) == ["Awakening", "Chorale BWV 66.6", "Nebula"]
    none = ask(engine, "which tracks are above 200 bpm?")
    assert none.data["answer"] == []


def test_comparisons(engine):
    assert ask(engine, "which is faster, Battle Epic or Nebula?").data["answer"] == "Battle Epic"
    assert ask(engine, "which is shorter, Nebula or Awakening?").data["answer"] == "Awakening"
    same = ask(engine, "are Nebula and Awakening in the same key?")
    assert same.data["answer"] is True  # F# minor and Gb minor
    diff = ask(engine, "are Battle Epic and Nebula in the same key?")
    assert diff.data["answer"] is False
    missing = ask(engine, "which is faster, Nebula or Unheard Thing?")
    assert missing.data["reason"] == "no_analysis"


@pytest.mark.parametrize(
    ("question", "kind", "name"),
    [
        ("how many tracks by Radiohead?", "artist", "Radiohead"),
        ("which is the longest track by Radiohead?", "artist", "Radiohead"),
        ("what is the average tempo of tracks by Radiohead?", "artist", "Radiohead"),
        ("list tracks by Radiohead", "artist", "Radiohead"),
        ("how long is the album Foo?", "album", "Foo"),
        ("how many tracks are on the album Foo Bar?", "album", "Foo Bar"),
        ("how many reggae tracks are there?", "genre or tag", "reggae"),
    ],
)
def test_unknown_filter_names_are_not_dropped(engine, question, kind, name):
    """A filter the library lacks is named as unknown, never counted as the whole library."""
    reply = ask(engine, question)
    assert reply.data["known"] is False, reply.text
    assert reply.data["reason"] == "no_match"
    assert reply.text.startswith(f"I don't know any {kind} called {name}"), reply.text
    assert "7" not in reply.text and "in the library" not in reply.text


def test_unknown_artist_suggests_close_names_and_partial_names_resolve(engine):
    reply = ask(engine, "how many tracks by Maxwell Stack?")
    assert reply.data["reason"] == "no_match"
    assert "Maxstack" in reply.data["suggestions"] and "Maxstack" in reply.text
    # a name inside a longer catalog name is that artist (catalog.queries.find_tracks)
    doug = ask(engine, "how many tracks by Doug?")
    assert doug.data["answer"] == 1 and doug.text == "There is 1 track by Doug Kaufman."
    # a genre label with no matching track is a count of none that names the label
    jazz = ask(engine, "how many jazz tracks?")
    assert jazz.data["answer"] == 0 and "jazz" in jazz.text
