"""Property: any text at all gets a reply from the whole turn (NLU, policy, action), never an
exception, and the library is untouched by text alone."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from catalog.db import open_catalog
from catalog.models import Track
from tests.dialogue_library import TRACKS, make_assistant

WORDS = [
    "play", "the", "second", "one", "Victory", "Nebula", "more", "like", "this", "delete",
    "playlist", "yes", "no", "add", "to", "faster", "what's", "its", "tempo", "by", "Maxstack",
    "80s", "120", "bpm", "not", "that", "pause", "skip", "describe", "compare", "and", "?",
]  # fmt: skip

sentences = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(WORDS), max_size=12).map(" ".join),
    st.text(alphabet=st.characters(categories=["Lo", "So", "Mn", "Zs", "Cc"]), max_size=60),
)


@pytest.fixture(scope="module")
def bot(tmp_path_factory, module_catalog_url):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUSICBERT_HOME", str(tmp_path_factory.mktemp("fuzz_home")))
        catalog = open_catalog(module_catalog_url)
        yield make_assistant(catalog)
        catalog.close()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(turns=st.lists(sentences, min_size=1, max_size=3))
def test_any_text_gets_a_reply(bot, turns):
    for text in turns:
        reply = bot.handle(text)
        assert isinstance(reply.text, str) and reply.text.strip()
        assert reply.parse is not None
        for e in reply.parse.entities:
            assert 0 <= e.start < e.end <= len(reply.parse.text)
        for t in reply.tracks:
            assert t.title  # every track shown is a real row
    with bot.catalog.session() as s:
        assert s.scalar(select(func.count(Track.id))) == len(TRACKS)
