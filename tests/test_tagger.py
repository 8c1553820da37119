"""Tagger: patch-averaged musicnn tags and the kind of every tag name."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from musicbert.errors import AudioError
from musicbert.logmel import N_MELS, PATCH_FRAMES, SR, logmel, patchify
from musicbert.musicnn import MODEL_NAMES, TAGS
from musicbert.tagger import (
    _KIND_OF,
    Tagger,
    average_probs,
    canonical_tag,
    merge_tags,
    model_tags,
    tag_kind,
)

KINDS = {"genre", "mood", "instrument", "other"}


@pytest.fixture(scope="module")
def tagger(tmp_path_factory) -> Tagger:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUSICBERT_HOME", str(tmp_path_factory.mktemp("tagger_home")))
        return Tagger()


def test_every_model_tag_is_classified_explicitly():
    for name in MODEL_NAMES:
        for tag in TAGS[name]:
            assert tag.lower() in _KIND_OF, tag
            assert tag_kind(tag) in KINDS
            assert tag_kind(canonical_tag(tag)) in KINDS


@pytest.mark.parametrize(
    ("tag", "kind"),
    [
        ("rock", "genre"),
        ("Hip-Hop", "genre"),
        ("Progressive rock", "genre"),
        ("House", "genre"),
        ("Mellow", "mood"),
        ("sad", "mood"),
        ("guitar", "instrument"),
        ("female vocalists", "instrument"),
        ("male voice", "instrument"),
        ("80s", "other"),
        ("no vocals", "other"),
        ("fast", "other"),
        ("  ROCK ", "genre"),
        ("polka", "other"),
    ],
)
def test_tag_kind(tag, kind):
    assert tag_kind(tag) == kind


def test_canonical_names_fold_synonyms():
    assert canonical_tag("female vocalist") == canonical_tag("Woman") == "female vocals"
    assert canonical_tag("Hip-Hop") == "hip-hop"
    assert canonical_tag("no voice") == "no vocals"


def synthetic_patches(seconds: float = 7.0) -> np.ndarray:
    rng = np.random.default_rng(3)
    t = np.arange(int(seconds * SR)) / SR
    wave = 0.3 * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2
    wave = (wave + 0.02 * rng.standard_normal(t.size)).astype(np.float32)
    return patchify(logmel(wave))


def test_tag_patches_averages_per_patch_probabilities(tagger):
    patches = synthetic_patches()
    probs = tagger.tag_patches(patches)
    assert set(probs) == set(MODEL_NAMES)
    for name, values in probs.items():
        assert values.shape == (50,) and values.dtype == np.float32
        assert ((values >= 0) & (values <= 1)).all()
        with torch.inference_mode():
            per_patch = tagger.models[name](torch.from_numpy(patches)).tag_probs.numpy()
        np.testing.assert_allclose(values, per_patch.mean(axis=0), atol=1e-6)


def test_small_batches_give_the_same_average(tagger):
    patches = synthetic_patches(13.0)
    small = Tagger.__new__(Tagger)
    small.device, small.models, small.batch_size = tagger.device, tagger.models, 2
    for name, values in tagger.tag_patches(patches).items():
        np.testing.assert_allclose(small.tag_patches(patches)[name], values, atol=1e-6)


def test_matches_reference_tag_probabilities(tagger, shared_dir):
    ref = np.load(shared_dir / "reference" / "musicnn" / "musicnn_reference.npz")
    for clip in ("vibe_ace", "gtzan_country00000"):
        probs = tagger.tag_patches(ref[f"{clip}/logmel_patches"])
        for name in MODEL_NAMES:
            expected = ref[f"{clip}/{name}/tag_probs"].mean(axis=0)
            np.testing.assert_allclose(probs[name], expected, atol=1e-4)


def test_bad_patch_shapes_are_audio_errors(tagger):
    for bad in (np.zeros((0, PATCH_FRAMES, N_MELS)), np.zeros((PATCH_FRAMES, N_MELS))):
        with pytest.raises(AudioError):
            tagger.tag_patches(bad)


def test_tags_merge_synonyms_and_rank():
    msd = np.zeros(50, np.float32)
    mtt = np.zeros(50, np.float32)
    msd[TAGS["MSD_musicnn"].index("female vocalists")] = 0.4
    mtt[TAGS["MTT_musicnn"].index("woman")] = 0.7
    msd[TAGS["MSD_musicnn"].index("rock")] = 0.9
    mtt[TAGS["MTT_musicnn"].index("rock")] = 0.2
    tags = Tagger.tags({"MSD_musicnn": msd, "MTT_musicnn": mtt}, min_confidence=0.05)
    assert [(t.name, t.kind, t.source) for t in tags] == [
        ("rock", "genre", "MSD_musicnn"),
        ("female vocals", "instrument", "MTT_musicnn"),
    ]
    assert tags[0].confidence == pytest.approx(0.9) and tags[1].confidence == pytest.approx(0.7)
    assert len(Tagger.tags({"MSD_musicnn": msd}, top_k=1)) == 1
    distinct = {canonical_tag(t) for t in TAGS["MSD_musicnn"]}
    assert len(distinct) == 47  # female vocalist(s), chill(out), electronic(a) fold together
    assert {t.name for t in Tagger.tags({"MSD_musicnn": msd})} == distinct


def test_shares_loaded_models_and_averages(tagger):
    msd = tagger.models["MSD_musicnn"]
    shared = Tagger(models=[msd])
    assert list(shared.models) == ["MSD_musicnn"] and shared.models["MSD_musicnn"] is msd
    probs = np.array([[0.2, 0.4], [0.6, 0.0]], np.float32)
    np.testing.assert_allclose(average_probs(probs), [0.4, 0.2])
    with pytest.raises(ValueError):
        average_probs(np.zeros((0, 50)))


def test_model_tags_list_every_models_tags_and_merging_folds_them():
    rng = np.random.default_rng(4)
    probs = {name: rng.uniform(size=50).astype(np.float32) for name in MODEL_NAMES}
    listed = model_tags(probs)
    assert len(listed) == 100 and {t.source for t in listed} == set(MODEL_NAMES)
    assert [t.confidence for t in listed] == sorted((t.confidence for t in listed), reverse=True)
    best = {}
    for t in listed:
        best[t.name] = max(best.get(t.name, 0.0), t.confidence)
    merged = merge_tags(probs)
    assert {t.name: t.confidence for t in merged} == best
    assert Tagger.tags(probs) == merged


def test_the_embedder_runs_musicnn_through_its_tagger(tagger):
    from musicbert.embedder import Embedder

    with warnings.catch_warnings():  # without a packaged checkpoint: a random model, fine here
        warnings.simplefilter("ignore")
        embedder = Embedder.load(device="cpu")
    wave = np.random.default_rng(2).standard_normal(SR * 7).astype(np.float32) * 0.1
    desc = embedder.describe((wave, SR))
    assert set(embedder.tagger.models) == set(MODEL_NAMES)
    assert embedder.musicnn("MSD_musicnn") is embedder.tagger.models["MSD_musicnn"]
    patches = patchify(logmel(wave), cover_tail=True)
    for name, values in tagger.tag_patches(patches).items():
        np.testing.assert_allclose(desc.tag_probs[name], values, atol=1e-5)
