"""Song paths on a real catalog (tests/dialogue_library: SQLite + FAISS and PostgreSQL +
pgvector, vectors from the real embedder): ends kept, no repeats, steady progress, filters
honoured; the ``musicbert path`` command with --json; "take me from X to Y in N songs" in
the chat."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assistant.cli import main
from catalog.db import open_catalog
from catalog.filters import SearchError, SearchFilters
from catalog.song_path import song_path
from catalog.vectors import CatalogVectors, normalise
from tests.dialogue_library import make_assistant


@pytest.fixture
def bot(catalog_url):
    catalog = open_catalog(catalog_url)
    yield make_assistant(catalog)
    catalog.close()


def _ids(bot, title):
    return bot.search.resolve_track(title)


def test_a_path_keeps_its_ends_moves_steadily_and_repeats_nothing(bot):
    path = song_path(bot.search, "Nebula", "Battle Music", steps=5)
    ids = path.track_ids
    assert len(ids) == 5 and len(set(ids)) == 5
    assert ids[0] == _ids(bot, "Nebula") and ids[-1] == _ids(bot, "Battle Music")
    progress = [s.progress for s in path.steps]
    assert progress == sorted(progress) and progress[0] == 0.0 and progress[-1] == 1.0
    # neighbours are closer than the two ends are to each other
    all_ids, vecs = CatalogVectors(bot.catalog, bot.search.model_id, bot.search.dim).all()
    v = dict(zip(all_ids.tolist(), normalise(vecs), strict=True))
    ends = float(v[ids[0]] @ v[ids[-1]])
    steps = [float(v[a] @ v[b]) for a, b in zip(ids, ids[1:], strict=False)]
    assert np.mean(steps) > ends
    assert path.explanation().startswith("each step moves from ")
    assert "electronic" in path.start_labels and "orchestral" in path.end_labels


def test_a_path_honours_filters_and_says_when_too_few_tracks_fit(bot):
    only = SearchFilters(artist="Timothy Pinkham")
    path = song_path(bot.search, "Nebula", "Battle Music", steps=4, filters=only)
    inner = path.track_ids[1:-1]
    with bot.catalog.session() as s:
        from catalog.models import Track

        assert {s.get(Track, i).artist.name for i in inner} == {"Timothy Pinkham"}
    with pytest.raises(SearchError, match="only 2 tracks fit"):
        song_path(bot.search, "Nebula", "Battle Music", steps=6, filters=only)
    with pytest.raises(SearchError):
        song_path(bot.search, "Nebula", "Nebula", steps=4)


def test_the_path_command_with_json(bot, capsys):
    assert main(["path", "Nebula", "Battle Music", "-n", "4", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [s["title"] for s in doc["steps"]][0] == "Nebula"
    assert doc["steps"][-1]["title"] == "Battle Music" and len(doc["steps"]) == 4
    assert doc["explanation"].startswith("each step moves from")


def test_a_path_in_the_chat(bot):
    reply = bot.handle("take me from Nebula to Battle Music in 4 songs")
    assert reply.parse.intent == "song_path"
    assert [t.title for t in reply.tracks][::3] == ["Nebula", "Battle Music"]
    assert len(reply.tracks) == 4 and "each step moves from" in reply.text
    assert bot.state.last_results == [t.id for t in reply.tracks]
    played = bot.handle("play these")
    assert [t.id for t in played.tracks] == [t.id for t in reply.tracks]
    # "from" and "to" that do not lead into two names are no path
    assert bot.nlu.parse("add Nebula to road trip").intent != "song_path"
