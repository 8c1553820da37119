"""The real data pipeline on one rendered clip: music21 + FluidSynth -> musicnn/MiniLM cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.corpus import COLLECTIONS, SKIPPED, plan, read_clips, render_job, write_split
from training.features import assemble, extract, load_cache


def test_plan_is_fixed_and_keeps_held_out_collections_apart():
    jobs = plan(400, seed=0)
    assert jobs == plan(400, seed=0)
    assert not any(j["collection"] in SKIPPED for j in jobs)
    for job in jobs:
        held_out = COLLECTIONS[job["collection"]][3] == "test"
        assert (job["split"] == "test") == held_out
    # a piece is never in two splits
    split_of: dict[str, str] = {}
    for job in plan(100000, seed=0):
        assert split_of.setdefault(job["rel"], job["split"]) == job["split"]


@pytest.mark.slow
def test_one_rendered_clip_through_the_feature_cache(tmp_path):
    job = {
        "collection": "bach",
        "rel": "bach/bwv66.6.mxl",
        "tune": 0,
        "variation": 0,
        "split": "train",
    }
    facts = render_job(job, tmp_path / "corpus")
    assert facts is not None and facts.seconds > 4.0
    assert facts.family and facts.instrument and facts.tempo_class in ("slow", "moderate", "fast")
    with (tmp_path / "corpus" / "clips.jsonl").open("w") as f:
        f.write(json.dumps(facts.__dict__) + "\n")
        f.write('{"clip_id": "x", "skipped": "unusable"}\n')
    assert [c.clip_id for c in read_clips(tmp_path / "corpus")] == [facts.clip_id]
    split = json.loads(write_split(tmp_path / "corpus").read_text())
    assert split["train"]["collections"] == ["bach"]

    assert extract(tmp_path / "corpus", tmp_path / "features", include_recordings=False) == 1
    assert extract(tmp_path / "corpus", tmp_path / "features", include_recordings=False) == 0
    cache = load_cache(assemble(tmp_path / "features"))
    item = cache.items[0]
    assert item.labels["family"] == facts.family and item.n_patches >= 2
    assert cache.patches.dtype == np.float16 and cache.patches.shape[1] == 200
    texts = [cache.texts[t] for t in item.texts]
    assert any(t.startswith("a ") and "Bach" in t for t in texts)
    assert cache.text_state(item.query).shape[1] == 384
