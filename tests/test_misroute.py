"""Misroutes a new user hits: descriptions that contain a title, performers described
rather than named, albums named in part, artists the library lacks, "similar to X", and
each result list printed once. Real catalog (SQLite + FAISS and PostgreSQL + pgvector),
real NLU (tests/dialogue_library)."""

from __future__ import annotations

import pytest

from assistant.nlu.similarity import asks_for_similar
from assistant.render import reply_text
from assistant.turn import Entity
from catalog.db import open_catalog
from tests.dialogue_library import ENDGAME, TRACKS, WESNOTH, make_assistant

REQUESTS = {"play_music", "search_music", "recommend"}


@pytest.fixture
def bot(catalog_url):
    catalog = open_catalog(catalog_url)
    yield make_assistant(catalog)
    catalog.close()


@pytest.mark.parametrize(
    "text",
    [
        "triumphant victory music with brass",  # "Victory" is a title
        "frantic electronic stuff for a chase",
        "sad nebula music",
        "some calm knolls of doldesh tracks",
    ],
)
def test_a_description_that_contains_a_title_is_a_request(bot, text):
    parse = bot.nlu.parse(text)
    assert parse.intent in REQUESTS, parse
    assert parse.first("track") is None


@pytest.mark.parametrize(
    "text", ["something sung by a choir", "songs played by a string quartet", "sort them by tempo"]
)
def test_a_performer_described_is_no_artist(bot, text):
    assert bot.nlu.parse(text).first("artist") is None


def test_a_title_stays_a_name_where_it_is_one(bot):
    assert bot.nlu.parse("play Victory").first("track") == "Victory"
    parse = bot.nlu.parse("is battle music epic?")
    assert parse.first("track") == "Battle Music"
    assert parse.intent not in REQUESTS


@pytest.mark.parametrize(
    "text",
    [
        "how many tracks are on the Wesnoth soundtrack?",
        "how many songs does Battle for Wesnoth have",
    ],
)
def test_an_album_named_in_part_is_counted_whole(bot, text):
    reply = bot.handle(text)
    assert reply.parse.first("album") == WESNOTH
    n = sum(1 for t in TRACKS if t[2] == WESNOTH)
    assert f"There are {n} tracks on {WESNOTH}" in reply.text, reply.text


def test_an_album_part_names_the_one_album_that_has_every_word(bot):
    assert bot.nlu.parse("how many tracks are on the original soundtrack").first("album") == ENDGAME
    assert bot.nlu.parse("how many tracks on the battle soundtrack").first("album") == WESNOTH
    # "electronic" is in no album's title: no album
    assert bot.nlu.parse("how many tracks on the electronic soundtrack").first("album") is None


def test_an_artist_the_library_lacks_is_said_and_the_closest_offered(bot):
    reply = bot.handle("play something by the beatles")
    assert reply.parse.first("artist") == "The Beatles"
    assert reply.text.startswith("There is nothing by The Beatles in your library.")
    assert reply.tracks and bot.state.last_results == [t.id for t in reply.tracks]
    for text in ("recommend calm music by Taylor Swift", "find songs by pink floyd"):
        reply = bot.handle(text)
        assert "nothing by" in reply.text, reply.text
    reply = bot.handle("recommend calm music by Taylor Swift")
    assert reply.data["query"] == "calm"  # the rest of the request, not the name


@pytest.mark.parametrize(
    "text,seed",
    [
        ("play something similar to nebula", "Nebula"),
        ("put on tracks like Awakening", "Awakening"),
        ("find music in the style of Maxstack", "Maxstack"),
        ("queue songs that sound like battle music", "Battle Music"),
        ("recommend something reminiscent of the knolls of doldesh", "The Knolls of Doldesh"),
    ],
)
def test_like_a_named_track_or_artist_is_more_like_this(bot, text, seed):
    reply = bot.handle(text)
    assert reply.parse.intent == "more_like_this"
    assert seed in (reply.parse.first("track"), reply.parse.first("artist"))
    assert reply.tracks and all(t.title != seed for t in reply.tracks)


def test_like_as_a_verb_or_before_a_genre_is_no_likeness():
    text = "i'd like Nebula please"
    assert not asks_for_similar(text, [Entity("track", "Nebula", 5, 11)])
    text = "play something like jazz"
    assert not asks_for_similar(text, [Entity("genre", "jazz", 20, 24)])
    text = "play something like Nebula"
    assert asks_for_similar(text, [Entity("track", "Nebula", 20, 26)])


def test_each_result_is_printed_once(bot):
    reply = bot.handle("calm strings")
    assert reply.tracks
    out = reply_text(reply, width=120)
    titles = [t.title for t in reply.tracks]
    for title in titles:
        assert out.count(title) == titles.count(title), out
    assert "1. “" in reply.text  # the text alone (speech, Rasa) keeps its list
