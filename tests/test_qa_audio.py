"""Audio-derived facts, follow-ups and the "no analysis yet" answer."""

from __future__ import annotations

import pytest

from assistant.qa import QAContext, QAEngine
from tests.qa_library import build_library


@pytest.fixture(scope="module")
def engine(module_catalog_url):
    catalog = build_library(module_catalog_url)
    yield QAEngine(catalog)
    catalog.close()


def test_tempo_key_loudness(engine):
    ctx = QAContext()
    assert engine.ask("what's the tempo of Battle Epic?", ctx).data["answer"] == 132.0
    key = engine.ask("what key is Battle Epic in?", ctx)
    assert key.data["answer"] == "D minor" and key.data["hedged"] is False
    loud = engine.ask("how loud is Awakening?", ctx)
    assert loud.data["answer"] == -12.0 and "louder than most" in loud.text


def test_mode_question_is_yes_or_no(engine):
    assert engine.ask("is Battle Epic in a minor key?", QAContext()).data["answer"] is True
    assert engine.ask("is Battle Epic in a major key?", QAContext()).data["answer"] is False


def test_weak_key_estimate_is_hedged(engine):
    reply = engine.ask("what key is Nebula in?", QAContext())
    assert reply.data["hedged"] is True
    assert reply.text.startswith("I'm not sure")


def test_follow_up_uses_the_current_track_and_last_attribute(engine):
    ctx = QAContext()
    engine.ask("what key is Battle Epic in?", ctx)
    reply = engine.ask("and its tempo?", ctx)
    assert reply.data["answer"] == 132.0 and reply.data["follow_up"] is True
    reply = engine.ask("what about Awakening?", ctx)  # same attribute, new track
    assert reply.data["answer"] == 118.0
    assert ctx.current_track_id == reply.tracks[0].id


def test_follow_up_from_the_dialogue_context(engine):
    first = engine.ask("who performs Nebula?", QAContext())
    ctx = QAContext(current_track_id=first.tracks[0].id)
    assert engine.ask("how long is it?", ctx).data["answer"] == 240.0


def test_no_analysis_yet(engine):
    reply = engine.ask("what's the tempo of Unheard Thing?", QAContext())
    assert reply.data["known"] is False and reply.data["reason"] == "no_analysis"
    assert "not been analysed" in reply.text


def test_no_track_and_no_context(engine):
    reply = engine.ask("and its tempo?", QAContext())
    assert reply.data["reason"] == "no_track"


def test_catalog_changes_are_seen(tmp_path):
    from catalog.models import AudioFeatures, Track

    catalog = build_library(f"sqlite:///{tmp_path / 'c.db'}")
    engine = QAEngine(catalog)
    assert engine.ask("tempo of Unheard Thing?", QAContext()).data["reason"] == "no_analysis"
    with catalog.session() as s:
        t = s.query(Track).filter_by(title="Unheard Thing").one()
        t.features = AudioFeatures(
            tempo=101.0, key="E", mode="major", key_confidence=0.7, loudness_db=-18.0, peak_db=-3.0
        )
    assert engine.ask("tempo of Unheard Thing?", QAContext()).data["answer"] == 101.0


def test_rendered_tempo_and_key_from_file_tags_beat_the_estimate(tmp_path):
    from catalog.models import Tag, Track

    catalog = build_library(f"sqlite:///{tmp_path / 'c.db'}")
    with catalog.session() as s:
        t = s.query(Track).filter_by(title="Chorale BWV 66.6").one()
        t.tags.append(Tag(name="tempo: 96 bpm", kind="other", origin="file"))
        t.tags.append(Tag(name="key: g- major", kind="other", origin="file"))
    engine = QAEngine(catalog)
    tempo = engine.ask("what's the tempo of Chorale BWV 66.6?", QAContext())
    assert tempo.data["answer"] == 96.0 and "estimates 92" in tempo.text
    key = engine.ask("what key is Chorale BWV 66.6 in?", QAContext())
    assert key.data["answer"] == "Gb major" and key.data["facts"]["source"] == "file"
    assert engine.ask("which tracks are in a major key?", QAContext()).data["answer"] == [
        "Chorale BWV 66.6",
        "Defeat",
    ]
