"""Content questions: file tags as facts, musicnn tags with a confidence, hedging, zero-shot."""

from __future__ import annotations

import warnings

import pytest

from assistant.qa import QAContext, QAEngine
from tests.qa_library import ask, build_library, qa_engine

engine = pytest.fixture(scope="module", name="engine")(qa_engine)


def test_file_tags_are_facts(engine):
    reply = ask(engine, "is there piano in Chorale BWV 66.6?")
    assert reply.data["answer"] is True and reply.data["confidence"] == 1.0
    reply = ask(engine, "does Chorale BWV 66.6 have guitar in it?")
    assert reply.data["answer"] is False  # the file lists its instruments: piano only


def test_model_tags_give_a_confident_answer(engine):
    reply = ask(engine, "does Nebula have vocals?")
    assert reply.data["answer"] is False and not reply.data["hedged"]
    assert "no vocals" in reply.text and "%" in reply.text
    reply = ask(engine, "does Awakening have vocals?")
    assert reply.data["answer"] is True


def test_weak_evidence_is_hedged_not_stated(engine):
    reply = ask(engine, "does Battle Epic have vocals?")
    assert reply.data["hedged"] is True
    assert reply.data["reason"] == "low_confidence"
    assert reply.text.startswith("I'm not sure")


def test_no_model_evidence_means_i_dont_know(engine):
    reply = ask(engine, "is there piano in Unheard Thing?")
    assert reply.data["known"] is False and reply.data["reason"] == "no_analysis"


def test_genre_and_description(engine):
    genre = ask(engine, "what genre is Battle Epic?")
    assert "Romantic Classical" in genre.data["answer"]
    desc = ask(engine, "describe Nebula")
    assert "120 BPM" in desc.text and "electronic" in desc.text


def test_file_tags_can_be_hidden_to_measure_the_models(tmp_path):
    engine = QAEngine(build_library(f"sqlite:///{tmp_path / 'c.db'}"), use_file_tags=False)
    reply = ask(engine, "is there piano in Chorale BWV 66.6?")
    assert reply.data["answer"] is True  # musicnn's piano tag at 0.70
    assert reply.data["facts"]["evidence"][0]["source"] == "musicnn"


@pytest.mark.slow
def test_musicbert_zero_shot_against_label_prompts(tmp_path):
    """The zero-shot path with the real embedder: a track whose vector is the piano prompt's."""
    from musicbert.embedder import Embedder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        embedder = Embedder.load()
    piano = embedder.embed_text(["music played on piano"])[0]
    catalog = build_library(
        f"sqlite:///{tmp_path / 'c.db'}",
        vectors={"Unheard Thing": piano},
        model_id=str(embedder.model_id),
    )
    engine = QAEngine(catalog, embedder=embedder)
    # an untrained model's similarities are meaningless: not used as evidence
    if embedder.untrained:  # (the packaged default is trained once training has run)
        assert engine.ask("is there piano in Unheard Thing?", QAContext()).data["known"] is False
    engine.content.allow_untrained = True
    yes = engine.ask("is there piano in Unheard Thing?", QAContext())
    assert yes.data["answer"] is True
    assert yes.data["facts"]["evidence"][0]["source"] == "musicbert"
    no = engine.ask("is there a guitar in Unheard Thing?", QAContext())
    assert no.data["answer"] is False


def test_general_midi_names_and_implied_labels():
    from assistant.qa.content import tag_names_label

    assert tag_names_label("Acoustic Grand Piano", "piano", "instrument")
    assert tag_names_label("church organ", "organ", "instrument")
    assert tag_names_label("viola", "strings", "instrument")  # a quartet has strings
    assert tag_names_label("fiddle", "violin", "instrument")
    assert tag_names_label("choir", "vocals", "vocals")
    assert not tag_names_label("piano", "organ", "instrument")


def test_either_or_question_picks_the_better_supported(engine):
    reply = ask(engine, "is Chorale BWV 66.6 piano or guitar?")
    assert reply.data["answer"] == "piano"
    reply = ask(engine, "is Nebula happy or sad?")  # nothing speaks for either
    assert reply.data["known"] is False and reply.data["reason"] == "low_confidence"
