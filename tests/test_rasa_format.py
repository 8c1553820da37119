"""The Rasa project files: our reader of Rasa's formats, and the project's own consistency
(what `rasa data validate` would check: intents, entities, actions and responses agree)."""

from __future__ import annotations

import pytest
import yaml

from assistant.nlu.rasa_format import (
    DOMAIN_FILE,
    PROJECT_DIR,
    NLUDataError,
    annotate,
    load_domain,
    load_nlu,
    parse_example,
)

REQUIRED_INTENTS = """greet goodbye thank help affirm deny play_music recommend search_music
more_like_this refine playback_control ask_track_info ask_content ask_stats ask_concept
describe_track playlist_add playlist_create compare_tracks out_of_scope""".split()
REQUIRED_ENTITIES = """artist track album genre mood instrument attribute direction number
decade playlist control""".split()


def test_inline_annotations_become_offsets():
    line = (
        'play [Knolls](track) at [120](number) [bpm]{"entity": "attribute", '
        '"value": "tempo"} by [Bach](artist:Johann Sebastian Bach)'
    )
    ex = parse_example(line, "play_music")
    assert ex.text == "play Knolls at 120 bpm by Bach"
    got = [(e.entity, ex.text[e.start : e.end], e.value) for e in ex.entities]
    assert got == [
        ("track", "Knolls", "Knolls"),
        ("number", "120", "120"),
        ("attribute", "bpm", "tempo"),
        ("artist", "Bach", "Johann Sebastian Bach"),
    ]


def test_annotate_round_trips():
    line = (
        "compare [Nebula](track) and [Victory](track) by "
        '[bpm]{"entity": "attribute", "value": "tempo"}'
    )
    ex = parse_example(line, "compare_tracks")
    again = parse_example(annotate(ex), "compare_tracks")
    assert again == ex


def test_bad_entity_json_is_a_clear_error():
    with pytest.raises(NLUDataError, match="bad entity JSON"):
        parse_example("play [x]{not json}", "play_music")


def test_bad_files_are_clear_errors(tmp_path):
    bad = tmp_path / "nlu.yml"
    bad.write_text("nlu: [unclosed")
    with pytest.raises(NLUDataError, match="not valid YAML"):
        load_nlu(bad)
    bad.write_text('version: "3.1"\nnlu:\n  - intent: greet\n    examples: |\n      hi\n')
    with pytest.raises(NLUDataError, match="must start with '- '"):
        load_nlu(bad)
    with pytest.raises(NLUDataError, match="cannot read"):
        load_nlu(tmp_path / "missing.yml")


def test_project_has_every_intent_with_enough_annotated_examples():
    data = load_nlu()
    by_intent = data.by_intent()
    for intent in REQUIRED_INTENTS:
        assert len(by_intent.get(intent, [])) >= 25, intent
    used = {e.entity for ex in data.examples for e in ex.entities}
    assert set(REQUIRED_ENTITIES) <= used
    texts = [ex.text.lower() for ex in data.examples]
    assert len(texts) == len(set(texts)), "an example appears twice"


def test_synonyms_and_lookups_are_read():
    data = load_nlu()
    assert data.synonyms["bpm"] == "tempo"
    assert data.synonyms["skip"] == "next"
    assert "Maxstack" in data.lookups["artist"]
    assert "Battle Music" in data.lookups["track"]


def test_domain_agrees_with_data_rules_and_stories():
    domain = load_domain()
    data = load_nlu()
    assert set(domain.intents) == set(data.intents)
    assert set(REQUIRED_ENTITIES) <= set(domain.entities)
    used = {e.entity for ex in data.examples for e in ex.entities}
    assert used <= set(domain.entities)
    raw = yaml.safe_load(DOMAIN_FILE.read_text())
    assert raw["version"] == "3.1"
    for slot in raw["slots"].values():
        assert slot["mappings"], "Rasa 3 slots need mappings"
    known_actions = set(domain.actions) | set(domain.responses)
    for name in ("rules.yml", "stories.yml"):
        doc = yaml.safe_load((PROJECT_DIR / "data" / name).read_text())
        assert doc["version"] == "3.1"
        for item in doc.get("rules") or doc.get("stories"):
            for step in item["steps"]:
                if "action" in step:
                    assert step["action"] in known_actions, step
                if "intent" in step:
                    assert step["intent"] in set(domain.intents) | {"nlu_fallback"}, step
                for ent in step.get("entities", []):
                    assert set(ent) <= set(domain.entities)
    for intent in domain.intents:  # every intent has a rule answering it
        rules = yaml.safe_load((PROJECT_DIR / "data" / "rules.yml").read_text())["rules"]
        assert any(r["steps"][0]["intent"] == intent for r in rules), intent


def test_every_custom_action_is_served():
    from assistant.rasa_actions import executor

    domain = load_domain()
    assert set(executor().actions) == set(domain.actions)
    assert all(domain.response(n) for n in domain.responses)
