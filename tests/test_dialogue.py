"""Whole turns through Assistant.handle on a small real library (MusicBERT vectors, the
real MiniLM NLU, QA and search), on SQLite + FAISS and on PostgreSQL + pgvector
(``catalog_url``): follow-ups, questions, confirmations, bad input."""

from __future__ import annotations

import statistics

import pytest
from sqlalchemy import func, select

from assistant.state import DialogueState, Pending
from catalog.models import PlayHistory, Playlist
from tests.catalogs import backend_catalog
from tests.dialogue_library import make_assistant

catalog = pytest.fixture(name="catalog")(backend_catalog)


@pytest.fixture
def bot(catalog):
    return make_assistant(catalog)


def ids_of(bot, title, artist=None):
    from catalog.models import Artist, Track

    q = select(Track.id).where(Track.title == title)
    if artist:
        q = q.join(Artist, Track.artist_id == Artist.id).where(Artist.name == artist)
    with bot.catalog.session() as s:
        return list(s.scalars(q))


def test_play_by_title_queues_and_records_history(bot):
    reply = bot.handle("play Battle Music")
    assert reply.parse.intent == "play_music"
    assert [t.title for t in reply.tracks] == ["Battle Music"]
    assert "Battle Music" in reply.text and "Aleksi Aubry-Carlson" in reply.text
    assert bot.state.current_track_id == ids_of(bot, "Battle Music")[0]
    with bot.catalog.session() as s:
        assert s.scalar(select(func.count(PlayHistory.id))) == 1


def test_two_tracks_with_one_name_get_a_question(bot):
    reply = bot.handle("play Victory")
    assert reply.data.get("question") == "choose"
    assert "Timothy Pinkham" in reply.text and "Ryan Reilly" in reply.text
    assert bot.state.pending is not None and len(bot.state.pending.options) == 2
    reply = bot.handle("the second one")
    assert bot.state.pending is None
    assert reply.tracks[0].artist == "Ryan Reilly"
    # follow-up questions resolve against the chosen track, with its real numbers
    assert "110" in bot.handle("what's its tempo?").text
    assert "G major" in bot.handle("and its key?").text


def test_choice_by_artist(bot):
    bot.handle("play Victory")
    reply = bot.handle("the one by Timothy Pinkham")
    assert reply.tracks[0].artist == "Timothy Pinkham"


def test_another_one_and_not_that_one(bot):
    bot.handle("play Nebula")
    nebula = bot.state.current_track_id
    more = bot.handle("more like this")
    assert more.parse.intent == "more_like_this"
    assert nebula not in [t.id for t in more.tracks] and len(more.tracks) == 5
    current = bot.state.current_track_id
    reply = bot.handle("not that one")
    assert reply.parse.intent == "reject"
    assert current in bot.state.rejected
    assert bot.state.current_track_id != current
    assert reply.tracks and reply.tracks[0].id == bot.state.current_track_id


def test_recommend_then_refine_and_pick(bot):
    first = bot.handle("recommend something calm")
    assert first.parse.intent == "recommend" and first.tracks
    assert bot.state.last_query == "calm"
    refined = bot.handle("more upbeat")
    assert refined.parse.intent == "refine"
    assert refined.tracks and "upbeat" in refined.text
    second = refined.tracks[1]
    picked = bot.handle("the second one")
    assert picked.tracks[0].id == second.id


def tempi(bot, refs):
    from catalog.models import AudioFeatures

    ids = [r.id for r in refs]
    with bot.catalog.session() as s:
        rows = dict(
            s.execute(
                select(AudioFeatures.track_id, AudioFeatures.tempo).where(
                    AudioFeatures.track_id.in_(ids)
                )
            ).all()
        )
    return [rows[i] for i in ids]


def test_a_bare_description_is_a_search_not_a_question(bot):
    reply = bot.handle("epic orchestral battle music")
    assert reply.parse.intent == "search_music" and reply.action == "action_search_music"
    assert reply.parse.first("track") is None  # "battle music" ends the description
    assert bot.state.last_query == "epic orchestral battle"  # the title is not a name here
    assert reply.tracks[0].title == "Battle Music"  # found by what it sounds like
    for text in ("calm piano", "jazz", "upbeat electronic with female vocals"):
        reply = bot.handle(text)
        assert reply.action in ("action_search_music", "action_play_music"), (text, reply.text)
        assert reply.tracks, text
    # named, the track is still the track
    assert bot.handle("play Battle Music").tracks[0].title == "Battle Music"
    assert "Aleksi Aubry-Carlson" in bot.handle("who wrote Battle Music?").text


def test_more_upbeat_raises_the_tempo_and_slower_lowers_it(bot):
    calm = bot.handle("recommend something calm")
    was = statistics.median(tempi(bot, calm.tracks))
    up = bot.handle("make it more upbeat")
    assert up.parse.intent == "refine" and up.action == "action_refine"
    now = statistics.median(tempi(bot, up.tracks))
    assert now > was and min(tempi(bot, up.tracks)) > was
    assert f"faster: median {now:.0f} bpm, was {was:.0f}" in up.text
    assert up.data["tempo"]["before"] == was and up.data["tempo"]["after"] == now
    assert [t.id for t in up.tracks] == bot.state.last_results

    faster = bot.handle("faster")
    fastest = statistics.median(tempi(bot, faster.tracks))
    assert faster.action == "action_refine" and fastest > now
    again = bot.handle("faster")  # nothing is faster than the fastest: said, nothing changes
    assert not again.tracks and "Nothing in your library is faster" in again.text
    assert bot.state.last_results == [t.id for t in faster.tracks]

    slower = bot.handle("slower")
    slow = statistics.median(tempi(bot, slower.tracks))
    assert slower.action == "action_refine" and slow < fastest
    assert max(tempi(bot, slower.tracks)) < fastest
    calmer = bot.handle("calmer")
    assert calmer.action == "action_refine"
    assert statistics.median(tempi(bot, calmer.tracks)) < slow
    assert "slower: median" in calmer.text


def test_tempo_refinement_without_vectors(catalog):
    from assistant.dialogue import Assistant
    from tests.dialogue_library import build_library, shared_models

    embedder, nlu = shared_models()
    build_library(catalog, embedder)
    nlu.refresh_names(catalog)
    bot = Assistant(catalog, nlu=nlu)  # no embedder: no search engine, tags in SQL
    first = bot.handle("find calm music")
    assert [t.title for t in first.tracks] == ["The Knolls of Doldesh"]
    up = bot.handle("faster")
    assert up.action == "action_refine" and up.tracks
    assert min(tempi(bot, up.tracks)) > 70 and "faster: median" in up.text


def test_refining_before_any_search_searches(bot):
    reply = bot.handle("something calmer")
    assert reply.parse.intent == "refine"
    assert reply.action == "action_search_music" and reply.tracks


def test_search_by_artist_and_unknown_names(bot):
    reply = bot.handle("find tracks by Maxstack")
    assert sorted(t.title for t in reply.tracks) == ["Awakening", "Nebula"]
    played = bot.state.current_track_id
    unknown = bot.handle("play Radiohead")
    # said, and the closest tracks offered, not played
    assert unknown.text.startswith("There is nothing by Radiohead in your library.")
    assert unknown.tracks and bot.state.current_track_id == played
    missing = bot.handle("play Knolls of Dolldesh")
    assert missing.tracks and missing.tracks[0].title == "The Knolls of Doldesh"


def test_playlists_and_confirmed_delete(bot):
    bot.handle("play Nebula")
    reply = bot.handle("add this to my road trip playlist")
    assert reply.parse.intent == "playlist_add"
    assert "road trip" in reply.text and "Nebula" in reply.text
    bot.handle("recommend something electronic")
    bot.handle("add these to road trip")
    with bot.catalog.session() as s:
        pl = s.scalar(select(Playlist).where(Playlist.name == "road trip"))
        assert pl is not None and len(pl.items) >= 2
    ask = bot.handle("delete the road trip playlist")
    assert ask.data.get("question") == "confirm" and "yes or no" in ask.text
    kept = bot.handle("no")
    assert "kept" in kept.text
    with bot.catalog.session() as s:
        assert s.scalar(select(func.count(Playlist.id))) == 1
    bot.handle("delete the road trip playlist")
    done = bot.handle("yes")
    assert "Deleted" in done.text
    with bot.catalog.session() as s:
        assert s.scalar(select(func.count(Playlist.id))) == 0
    assert "Nothing" not in bot.handle("yes").text  # nothing pending: a plain OK
    assert "no playlist called" in bot.handle("delete the workout playlist").text


def test_questions_go_to_qa_with_facts_from_the_data(bot):
    assert "120" in bot.handle("what's the tempo of Nebula?").text
    compare = bot.handle("which is faster, Nebula or Awakening?")
    assert compare.parse.intent == "compare_tracks"
    assert "Awakening" in compare.text and "128" in compare.text
    assert "7" in bot.handle("how many tracks do I have?").text
    unknown = bot.handle("how many tracks by Radiohead?")  # an artist the library lacks
    assert unknown.text.startswith("I don't know any artist called Radiohead"), unknown.text


def test_playback_without_a_player_says_so(bot):
    reply = bot.handle("pause")
    assert reply.parse.intent == "playback_control"
    assert "no audio output" in reply.text


@pytest.mark.parametrize(
    "text",
    ["", "   \n\t", "x" * 10_000, "😀🎵🔥" * 20, "שלום, תנגן משהו רגוע", "مرحبا كيف حالك",
     "'; DROP TABLE tracks; --", "play ' OR 1=1 --", "play Zyxwvut Qwerty", "\x00\x1b[2J",
     "play " + "Battle Music " * 500],
)  # fmt: skip
def test_bad_input_gets_an_answer(bot, text):
    reply = bot.handle(text)
    assert isinstance(reply.text, str) and reply.text.strip()
    with bot.catalog.session() as s:  # nothing was dropped
        from catalog.models import Track

        assert s.scalar(select(func.count(Track.id))) == 7


def test_state_survives_rasa_slots():
    state = DialogueState(
        current_track_id=4,
        last_results=[4, 5, 6],
        filters={"artist": "Maxstack", "year_min": 2010, "year_max": 2019},
        last_query="dark electronic",
        playlist="road trip",
        pending=Pending("confirm", "delete_playlist", payload={"id": 1, "name": "road trip"}),
        last_attribute="audio:tempo",
        rejected=[2],
    )
    assert DialogueState.from_slots(state.to_slots()) == state
    assert DialogueState.from_slots({"current_track": "nope", "pending": "junk"}) == DialogueState()
    assert state.choose(2) == 5 and state.choose(-1) == 6 and state.choose(9) is None
