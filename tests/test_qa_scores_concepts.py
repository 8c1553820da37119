"""Score questions answered with music21, and glossary concepts."""

from __future__ import annotations

import pytest

from assistant.qa import QAContext
from assistant.qa.concepts import Glossary, default_glossary
from assistant.qa.scores import ScoreError, score_facts
from musicbert.errors import ConfigError
from tests.qa_library import qa_engine

engine = pytest.fixture(scope="module", name="engine")(qa_engine)


def test_score_facts_of_a_bach_chorale():
    f = score_facts("bach/bwv66.6")
    assert f.time_signatures == ["4/4"]
    assert f.measures == 10
    assert f.key == "F# minor"
    assert f.parts == ["Soprano", "Alto", "Tenor", "Bass"]
    assert f.highest_note == "E5"
    assert f.composer == "Johann Sebastian Bach"


def test_missing_score_is_a_clear_error():
    with pytest.raises(ScoreError):
        score_facts("nobody/no-such-piece")


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("what is the time signature of Chorale BWV 66.6?", "4/4"),
        ("how many measures does Chorale BWV 66.6 have?", 10),
        ("what's the highest note in Chorale BWV 66.6?", "E5"),
        ("what key is the score of Chorale BWV 66.6 in?", "F# minor"),
        (
            "what is the instrumentation of the score of Chorale BWV 66.6?",
            ["Soprano", "Alto", "Tenor", "Bass"],
        ),
    ],
)
def test_score_questions(engine, question, answer):
    reply = engine.ask(question, QAContext())
    assert reply.data["type"] == "score"
    assert reply.data["answer"] == answer, reply.text


def test_score_question_about_a_recording(engine):
    reply = engine.ask("what is the time signature of Nebula?", QAContext())
    assert reply.data["reason"] == "no_score"


def test_glossary_is_complete_and_sourced():
    g = default_glossary()
    assert len(g.concepts) >= 40
    for c in g.concepts:
        assert c.sources, c.term
        assert len(c.definition) > 40, c.term
    for term in (
        "fugue",
        "ragtime",
        "chorale",
        "sonata",
        "minor key",
        "major key",
        "tempo",
        "bpm",
        "time signature",
        "string quartet",
        "canon",
        "waltz",
        "march",
        "syncopation",
        "timbre",
    ):
        assert g.lookup(term) is not None, term


def test_glossary_lookup_tolerates_plurals_aliases_typos():
    g = default_glossary()
    assert g.lookup("fugues").term == "fugue"
    assert g.lookup("a rag").term == "ragtime"
    assert g.lookup("syncopaton").term == "syncopation"
    assert g.lookup("quantum chromodynamics") is None


@pytest.mark.parametrize(
    ("question", "term"),
    [
        ("what is a fugue?", "fugue"),
        ("what does syncopation mean?", "syncopation"),
        ("define time signature", "time signature"),
        ("what's a minor key?", "minor key"),
        ("explain tempo", "tempo"),
        ("what is bpm", "bpm"),
    ],
)
def test_concept_questions(engine, question, term):
    reply = engine.ask(question, QAContext())
    assert reply.data["type"] == "concept"
    assert reply.data["answer"] == term
    assert "Sources:" in reply.text


def test_unknown_concept(engine):
    reply = engine.ask("what is a blorptastic?", QAContext())
    assert reply.data["known"] is False and reply.data["reason"] == "no_concept"


def test_bad_glossary_file(tmp_path):
    bad = tmp_path / "g.yml"
    bad.write_text("- term: x\n")
    with pytest.raises(ConfigError):
        Glossary.load(bad)
    bad.write_text(": : :")
    with pytest.raises(ConfigError):
        Glossary.load(bad)
