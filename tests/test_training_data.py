"""Corpus descriptions, pseudo-captions and deterministic batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicbert.losses import sample_patch_mask
from musicbert.musicnn import TAGS
from tests.training_cache import tiny_cache
from training.captions import CaptionError, pseudo_caption, ranked_tags
from training.corpus import ClipFacts, describe, paraphrase, tempo_class
from training.data import (
    MAX_SEGMENT,
    Batcher,
    DeviceBatcher,
    device_patch_mask,
    split_segments,
)
from training.features import TAG_NAMES, FeatureCache, Item, load_cache


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


def _coded_cache(lengths: list[int], texts_per_item: int = 3, seed: int = 0) -> FeatureCache:
    """A cache whose vectors say where they come from: a patch row starts (item, position)
    and a token row (text, position), so a batch can be read back exactly."""
    rng = np.random.default_rng(seed)
    items, patches, states, offsets, texts = [], [], [], [0], []
    row = 0
    for i, n in enumerate(lengths):
        p = np.zeros((n, 200), np.float16)
        p[:, 0], p[:, 1], p[:, 2] = i, np.arange(n), 1.0
        patches.append(p)
        own = []
        for _ in range(texts_per_item):
            t, tok = len(texts), int(rng.integers(3, 12))
            s = np.zeros((tok, 384), np.float16)
            s[:, 0], s[:, 1], s[:, 2] = t, np.arange(tok), 1.0
            states.append(s)
            offsets.append(offsets[-1] + tok)
            texts.append(f"text {t}")
            own.append(t)
        target = np.zeros(len(TAG_NAMES))
        target[i % len(TAG_NAMES)] = 1.0
        items.append(Item(f"i{i}", "corpus", "train", {}, row, n, own, own[0], target.tolist()))
        row += n
    k = len(lengths)
    return FeatureCache(
        items=items,
        patches=np.concatenate(patches),
        tag_probs=rng.uniform(size=(k, 100)).astype(np.float16),
        mfcc=np.zeros((k, 40), np.float32),
        mfcc_segments={"a": np.zeros((k, 40), np.float32), "b": np.zeros((k, 40), np.float32)},
        texts=texts,
        text_offsets=np.asarray(offsets, np.int64),
        text_states=np.concatenate(states),
    )


def _segment(rows: torch.Tensor, mask: torch.Tensor) -> tuple[int, int, int]:
    """(item, start, stop) of one padded row of coded patches; checks it is contiguous."""
    n = int(mask.sum())
    assert n >= 1 and mask[:n].all() and not mask[n:].any()  # real patches first
    assert (rows[n:] == 0).all()  # padding is zeros
    item = rows[:n, 0]
    assert (item == item[0]).all()
    pos = rows[:n, 1].long()
    assert torch.equal(pos, pos[0] + torch.arange(n))
    return int(item[0]), int(pos[0]), int(pos[0]) + n


LENGTHS = [1, 2, 3, 5, 9, 20, 4, 7, 1, 12, 2, 30]


def test_device_batches_have_the_batcher_semantics():
    cache = _coded_cache(LENGTHS)
    ids = list(range(len(LENGTHS)))
    batcher = DeviceBatcher(cache, ids, 6, seed=1, device="cpu")
    reference = Batcher(cache, ids, 6, seed=1)
    assert batcher.batches_per_epoch == 2 and batcher.max_patches == MAX_SEGMENT
    longest = max(len(cache.text_state(t)) for it in cache.items for t in it.texts)
    swaps, seen_texts = set(), set()
    for step in range(8):
        batch = batcher.batch(step)
        assert batch.audio.shape == batch.other.shape == (6, MAX_SEGMENT, 200)
        assert batch.text.shape == (6, longest, 384) and batch.concepts.shape == (6, 100)
        assert batch.audio.dtype == batch.text.dtype == batch.concepts.dtype == torch.float32
        items = []
        for r in range(6):
            i, a0, a1 = _segment(batch.audio[r], batch.audio_mask[r])
            j, b0, b1 = _segment(batch.other[r], batch.other_mask[r])
            n = LENGTHS[i]
            assert i == j and 0 <= a0 < a1 <= n and 0 <= b0 < b1 <= n
            assert a1 - a0 <= MAX_SEGMENT and b1 - b0 <= MAX_SEGMENT
            if n == 1:
                assert (a0, a1) == (b0, b1) == (0, 1)
            else:  # adjacent and disjoint, as split_segments cuts them
                assert a1 == b0 or b1 == a0
                cut = max(a0, b0)
                assert a1 - a0 == min(MAX_SEGMENT, cut if a1 == cut else n - cut)
                swaps.add(a1 == b0)
            t_len = int(batch.text_mask[r].sum())
            t = int(batch.text[r, 0, 0])
            assert t in cache.items[i].texts and t_len == len(cache.text_state(t))
            assert torch.equal(batch.text[r, :t_len, 1], torch.arange(t_len).float())
            assert (batch.text[r, t_len:] == 0).all() and not batch.text_mask[r, t_len:].any()
            seen_texts.add(t)
            assert torch.equal(batch.concepts[r], torch.from_numpy(cache.tag_probs[i]).float())
            assert torch.equal(batch.tag_targets[r], torch.tensor(cache.items[i].tag_target))
            items.append(i)
        # the same items in the same order as the host batcher's batch of this step
        host = reference.batch(step)
        assert items == [int(x) for x in host.audio[:, 0, 0]]
        assert torch.equal(host.concepts, batch.concepts)
        masked = batch.masked
        assert not (masked & ~batch.audio_mask).any() and masked.any(1).all()
        assert (~masked & batch.audio_mask)[batch.audio_mask.sum(1) >= 2].any(1).all()
    assert swaps == {True, False}  # the anchor comes before and after its partner
    assert len(seen_texts) > len(LENGTHS)  # more than one text per item gets chosen


def test_device_batches_are_a_pure_function_of_the_step():
    cache = _coded_cache(LENGTHS)
    ids = list(range(len(LENGTHS)))
    one = DeviceBatcher(cache, ids, 4, seed=3)
    two = DeviceBatcher(cache, ids, 4, seed=3)
    seven = one.batch(7)
    one.batch(2)  # another step (and epoch) in between changes nothing
    for key, value in seven.__dict__.items():
        assert torch.equal(value, getattr(two.batch(7), key)), key
        assert torch.equal(value, getattr(one.batch(7), key)), key
    assert not torch.equal(seven.audio, one.batch(8).audio)
    assert not torch.equal(seven.audio, DeviceBatcher(cache, ids, 4, seed=4).batch(7).audio)
    # an epoch covers every item once; ranks share out disjoint items
    epoch = [int(x) for s in range(3) for x in one.batch(s).audio[:, 0, 0]]
    assert sorted(epoch) == ids
    ranks = [DeviceBatcher(cache, ids, 2, 0, rank=r, world_size=2) for r in (0, 1)]
    seen = [{int(x) for s in range(3) for x in b.batch(s).audio[:, 0, 0]} for b in ranks]
    assert not seen[0] & seen[1] and len(seen[0] | seen[1]) == len(ids)


def test_device_batcher_shapes_follow_the_cache_and_wrap_small_sets(tmp_path):
    cache = load_cache(tiny_cache(tmp_path))  # items of 2-5 patches, one text each
    ids = cache.indices("train")[:3]
    batch = DeviceBatcher(cache, ids, 5, seed=0).batch(0)
    longest = max(cache.items[i].n_patches for i in ids)
    assert batch.audio.shape == (5, longest - 1, 200)  # segments leave one patch at least
    tokens = [len(cache.text_state(cache.items[i].texts[0])) for i in ids]
    assert batch.text.shape[1] == max(tokens)
    # fewer items than a batch: they wrap around, as in Batcher
    host = Batcher(cache, ids, 5, seed=0).batch(0)
    assert torch.equal(batch.concepts, host.concepts)
    cache.items[ids[0]].texts = []
    with pytest.raises(ValueError, match="without patches or texts"):
        DeviceBatcher(cache, ids, 4, seed=0)


def test_device_patch_mask_is_sample_patch_mask():
    gen = torch.Generator().manual_seed(0)
    for probability in (0.0, 0.15, 0.5, 1.0):
        lengths = torch.randint(0, 9, (64,), generator=gen)
        valid = torch.arange(8) < lengths[:, None]
        seed = int(torch.randint(2**31, (1,), generator=gen))
        draw = torch.rand(valid.shape, generator=torch.Generator().manual_seed(seed))
        expected = sample_patch_mask(valid, probability, torch.Generator().manual_seed(seed))
        assert torch.equal(device_patch_mask(valid, probability, draw), expected)


def test_host_batches_carry_the_concepts(tmp_path):
    cache = _coded_cache(LENGTHS)
    batch = Batcher(cache, list(range(len(LENGTHS))), 4, seed=0).batch(1)
    items = [int(x) for x in batch.audio[:, 0, 0]]
    assert batch.concepts.dtype == torch.float32
    assert torch.equal(batch.concepts, torch.from_numpy(cache.tag_probs[items]).float())
