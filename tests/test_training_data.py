"""Corpus descriptions, pseudo-captions and deterministic batches."""

from __future__ import annotations

import numpy as np
import pytest

from musicbert.musicnn import TAGS
from tests.training_cache import tiny_cache
from training.captions import CaptionError, pseudo_caption, ranked_tags
from training.corpus import ClipFacts, describe, paraphrase, tempo_class
from training.data import Batcher, split_segments
from training.features import load_cache


def _facts(**kw) -> ClipFacts:
    base = dict(
        clip_id="x",
        collection="bach",
        piece="bach/a.mxl#0",
        split="train",
        composer="Bach",
        era="baroque",
        form="chorale",
        title="Jesu",
        time_signature="4/4",
        key="G major",
        family="organ",
        program=19,
        instrument="church organ",
        qpm=60.0,
        tempo_class="slow",
        transpose=0,
        register="middle",
    )
    base.update(kw)
    return ClipFacts(**base)


def test_description_names_every_fact():
    text = describe(_facts())
    assert text == "a slow baroque chorale by Bach played on church organ in G major, 4/4"


def test_description_without_composer_key_or_metre_and_with_register():
    text = describe(_facts(composer=None, key=None, time_signature=None, register="high"))
    assert text == "a slow baroque chorale played on church organ in a high register"
    assert "Bach" in paraphrase(_facts()) and "church organ" in paraphrase(_facts())


def test_tempo_classes_cover_the_range():
    assert [tempo_class(q) for q in (40, 79.9, 80, 124, 125, 300)] == [
        "slow",
        "slow",
        "moderate",
        "moderate",
        "fast",
        "fast",
    ]


def test_pseudo_caption_merges_synonyms_and_skips_decades():
    msd = np.zeros(50)
    msd[TAGS["MSD_musicnn"].index("female vocalists")] = 0.8
    msd[TAGS["MSD_musicnn"].index("80s")] = 0.95
    mtt = np.zeros(50)
    mtt[TAGS["MTT_musicnn"].index("woman")] = 0.6
    mtt[TAGS["MTT_musicnn"].index("slow")] = 0.5
    caption = pseudo_caption({"MSD_musicnn": msd, "MTT_musicnn": mtt})
    assert caption == "female vocals, slow"
    assert dict(ranked_tags({"MSD_musicnn": msd, "MTT_musicnn": mtt}))["female vocals"] == 0.8


def test_pseudo_caption_keeps_the_best_tag_when_all_are_weak():
    p = np.full(50, 0.01)
    p[TAGS["MTT_musicnn"].index("harp")] = 0.05
    assert pseudo_caption({"MTT_musicnn": p}) == "harp"


def test_pseudo_caption_rejects_bad_input():
    with pytest.raises(CaptionError):
        pseudo_caption({"MTT_musicnn": np.zeros(3)})
    with pytest.raises(CaptionError):
        pseudo_caption({"nope": np.zeros(50)})
    with pytest.raises(CaptionError):
        pseudo_caption({"MTT_musicnn": np.full(50, np.nan)})


def test_segments_are_disjoint_and_bounded():
    rng = np.random.default_rng(0)
    for n in range(2, 30):
        (a0, a1), (b0, b1) = split_segments(n, rng, max_len=8)
        assert 0 < a1 - a0 <= 8 and 0 < b1 - b0 <= 8
        assert a1 <= b0 or b1 <= a0
    assert split_segments(1, rng) == ((0, 1), (0, 1))


def test_batches_are_a_pure_function_of_the_step(tmp_path):
    cache = load_cache(tiny_cache(tmp_path))
    ids = cache.indices("train")
    one = Batcher(cache, ids, 4, seed=3).batch(7)
    two = Batcher(cache, ids, 4, seed=3).batch(7)
    for key, value in one.__dict__.items():
        assert np.array_equal(value.numpy(), getattr(two, key).numpy()), key
    other = Batcher(cache, ids, 4, seed=4).batch(7)
    assert not np.array_equal(one.audio.numpy(), other.audio.numpy())
    assert one.masked.any() and not (one.masked & ~one.audio_mask).any()


def test_ranks_get_disjoint_items(tmp_path):
    cache = load_cache(tiny_cache(tmp_path))
    ids = cache.indices("train")
    firsts = [Batcher(cache, ids, 2, 0, rank=r, world_size=2) for r in (0, 1)]
    assert firsts[0].batches_per_epoch == firsts[1].batches_per_epoch
    seen = [set(), set()]
    for r, b in enumerate(firsts):
        for step in range(b.batches_per_epoch):
            batch = b.batch(step)
            seen[r].update(float(x) for x in batch.audio[:, 0, 0])
    assert not seen[0] & seen[1]
