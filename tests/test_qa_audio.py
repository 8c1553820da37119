"""Audio-derived facts, follow-ups and the "no analysis yet" answer."""

from __future__ import annotations

import pytest

from assistant.qa import QAContext, QAEngine
from tests.qa_library import build_library, qa_engine

engine = pytest.fixture(scope="module", name="engine")(qa_engine)


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


def test_loudest_ranks_by_lufs_and_falls_back_to_rms(tmp_path):
    from catalog.models import Track

    catalog = build_library(f"sqlite:///{tmp_path / 'c.db'}")
    before = QAEngine(catalog).ask("what's the loudest track?", QAContext())
    # Analysed before LUFS was measured: the RMS level decides, and the answer says so.
    assert before.data["answer"] == "Awakening" and "dBFS RMS" in before.text
    with catalog.session() as s:
        for t in s.query(Track).all():
            if t.features is not None:
                # Battle Epic is quieter than Awakening by RMS, louder as heard (LUFS).
                t.features.loudness_lufs = {"Battle Epic": -8.0, "Awakening": -11.0}.get(
                    t.title, -20.0
                )
    engine = QAEngine(catalog)
    loudest = engine.ask("what's the loudest track?", QAContext())
    assert loudest.data["answer"] == "Battle Epic" and "-8.0 LUFS" in loudest.text
    louder = engine.ask("which is louder, Battle Epic or Awakening?", QAContext())
    assert louder.data["answer"] == "Battle Epic" and "LUFS" in louder.text
    how_loud = engine.ask("how loud is Battle Epic?", QAContext())
    assert "-8.0 LUFS" in how_loud.text and how_loud.data["facts"]["loudness_lufs"] == -8.0


def test_key_hedge_threshold_is_the_measured_one():
    from assistant.qa.audio_facts import KEY_CONFIDENCE_FLOOR
    from catalog.analysis.trust import measured_trust

    assert KEY_CONFIDENCE_FLOOR == measured_trust()["key"]["hedge_below"]
    # Every band below the threshold was measured right less than two times in three.
    for band in measured_trust()["key"]["bands"]:
        if band["to"] > KEY_CONFIDENCE_FLOOR and band["n"] >= 3:
            assert band["exact"] >= 2 / 3


def test_estimated_tempo_says_how_it_may_be_off(engine):
    from assistant.qa.audio_facts import TEMPO_OCTAVE_CAVEAT, TEMPO_STRICT_ACCURACY

    reply = engine.ask("what's the tempo of Nebula?", QAContext())
    assert reply.data["answer"] == 120.0
    # The caveat follows the measured main-pulse accuracy (trust.json), not a guess.
    assert TEMPO_OCTAVE_CAVEAT == (TEMPO_STRICT_ACCURACY < 2 / 3)
    assert ("half or double that, 60 or 240" in reply.text) == TEMPO_OCTAVE_CAVEAT


def test_description_hedges_a_weak_key_and_gives_lufs(tmp_path):
    from catalog.models import Track

    catalog = build_library(f"sqlite:///{tmp_path / 'c.db'}")
    with catalog.session() as s:
        s.query(Track).filter_by(title="Nebula").one().features.loudness_lufs = -9.6
    engine = QAEngine(catalog)
    nebula = engine.ask("describe Nebula", QAContext())  # key confidence 0.12: a guess
    assert "perhaps in F# minor" in nebula.text and "-10 LUFS" in nebula.text
    epic = engine.ask("describe Battle Epic", QAContext())  # 0.9: stated
    assert "in D minor" in epic.text and "perhaps" not in epic.text
    assert "dBFS" in epic.text  # analysed before LUFS: the RMS level


def test_a_stated_key_says_how_often_such_keys_were_right(engine):
    from assistant.qa.audio_facts import measured_key_accuracy

    reply = engine.ask("what key is Battle Epic in?", QAContext())  # confidence 0.9
    accuracy = measured_key_accuracy(0.9)
    assert accuracy is not None and accuracy >= 2 / 3  # above the hedge, by construction
    assert f"right {accuracy:.0%} of the time" in reply.text
    assert reply.data["facts"]["measured_accuracy"] == round(accuracy, 2)
    assert measured_key_accuracy(None) is None
