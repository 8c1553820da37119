"""The play history on a real catalog (SQLite and PostgreSQL): most played in a window,
played in a window, not played lately; ``musicbert history --json``; the chat's history
requests (routed by their shape, whatever the intent classifier says)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from assistant.cli import main
from assistant.nlu.history_requests import request_kind
from catalog import history
from catalog.db import open_catalog
from catalog.models import PlayHistory
from tests.dialogue_library import make_assistant


@pytest.fixture
def bot(catalog_url):
    catalog = open_catalog(catalog_url)
    bot = make_assistant(catalog)
    ids = {t: bot.search.resolve_track(t) for t in ("Nebula", "Awakening", "Sad", "Battle Music")}
    plays = [  # (title, days ago)
        ("Nebula", 0.01), ("Nebula", 0.02), ("Nebula", 0.03),
        ("Awakening", 0.04),
        ("Sad", 1.2), ("Sad", 1.3),  # yesterday or the day before, never today
        ("Battle Music", 90), ("Battle Music", 91), ("Battle Music", 92), ("Battle Music", 93),
    ]  # fmt: skip
    now = datetime.now(UTC).replace(tzinfo=None)  # the fixture's now, not the import's
    with catalog.session() as s:
        for title, ago in plays:
            s.add(PlayHistory(track_id=ids[title], played_at=now - timedelta(days=ago)))
    bot.ids = ids
    yield bot
    catalog.close()


def test_history_queries(bot):
    cat, ids = bot.catalog, bot.ids
    top = history.most_played(cat, limit=2)
    assert [(r.track_id, r.plays) for r in top] == [(ids["Battle Music"], 4), (ids["Nebula"], 3)]
    since, until = history.window("in the last 7 days")
    assert [r.track_id for r in history.most_played(cat, since, until)] == [
        ids["Nebula"], ids["Sad"], ids["Awakening"]
    ]  # fmt: skip
    since, until = history.window("today")
    assert {r.track_id for r in history.played_in(cat, since, until)} <= {
        ids["Nebula"], ids["Awakening"], ids["Sad"]
    }  # fmt: skip
    old = history.not_played_lately(cat, days=30)
    assert [r.track_id for r in old] == [ids["Battle Music"]]
    with_never = history.not_played_lately(cat, days=30, limit=10, include_never=True)
    assert with_never[0].track_id == ids["Battle Music"] and len(with_never) == 4  # 3 never
    assert history.window("play some jazz") is None


def test_history_wordings_are_recognised_by_their_shape():
    assert request_kind("what were my most played songs last month") == "most_played"
    assert request_kind("show me the tracks I played the most") == "most_played"
    assert request_kind("put on something I haven't heard in a long time") == "not_lately"
    assert request_kind("anything we have not listened to lately?") == "not_lately"
    assert request_kind("play what I liked yesterday") == "played_in"
    assert request_kind("what did we listen to this week") == "played_in"
    for text in ("play Nebula", "play something calm", "who played Battle Music?", "I liked it"):
        assert request_kind(text) is None


def test_history_in_the_chat(bot):
    reply = bot.handle("my most played in the past 7 days")
    assert reply.parse.intent == "play_history"
    assert reply.tracks[0].id == bot.ids["Nebula"] and reply.tracks[0].why == "played 3×"
    reply = bot.handle("something I haven't played in a while")
    assert reply.tracks[0].id == bot.ids["Battle Music"]
    assert bot.ids["Nebula"] not in [t.id for t in reply.tracks]
    reply = bot.handle("play what I liked in the last 3 days")
    assert "Queued" in reply.text and reply.tracks
    assert {t.id for t in reply.tracks} == {bot.ids[t] for t in ("Nebula", "Awakening", "Sad")}


def test_the_history_command_with_json(bot, capsys):
    assert main(["history", "most-played", "--when", "last 7 days", "-k", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(t["title"], t["plays"]) for t in doc["tracks"]] == [("Nebula", 3)]
    assert main(["history", "not-lately", "--days", "30", "--json"]) == 0
    assert [t["title"] for t in json.loads(capsys.readouterr().out)["tracks"]] == ["Battle Music"]
    assert main(["history", "played", "--when", "someday"]) == 2


def test_outcomes_are_recorded_and_recommendations_follow_them(bot):
    cat, ids = bot.catalog, bot.ids
    # the latest play (14 minutes before the fixture was built) heard for 25 minutes: that
    # play gets the outcome (the plays are dated from the fixture's time, not the module's
    # import: a whole suite run on both backends reaches this test 10+ minutes later)
    history.record_outcome(cat, ids["Nebula"], "completed", 1500.0)
    with cat.session() as s:
        latest = s.query(PlayHistory).filter_by(track_id=ids["Nebula"]).count()
    assert latest == 3  # no new row: the play from moments ago got its outcome
    history.record_outcome(cat, ids["Nebula"], "completed", 300.0)  # a later play: a new row
    for _ in range(2):
        history.record_outcome(cat, ids["Sad"], "skipped", 3.0)
    with pytest.raises(ValueError):
        history.record_outcome(cat, ids["Sad"], "loved", 1.0)
    t = history.taste(cat)
    assert t.liked == [ids["Nebula"]] and t.skipped == [ids["Sad"]]
    reply = bot.handle("recommend something")
    assert reply.data["seeds"] == [ids["Nebula"]]
    got = [r.id for r in reply.tracks]
    assert got and ids["Sad"] not in got and ids["Nebula"] not in got
    assert "you usually skip" in reply.text
    # a described request leaves the skipped track out too ("sad" is its own tag)
    reply = bot.handle("recommend something sad with piano")
    assert reply.tracks and ids["Sad"] not in [r.id for r in reply.tracks]
    assert bot.state.rejected == []  # the history's exclusions are not the conversation's
