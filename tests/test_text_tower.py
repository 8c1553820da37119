"""The MiniLM text tower: offline load, hash check, pooling, awkward text."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest
import torch

from musicbert import checksums
from musicbert.configuration_musicbert import MINILM_SHA256
from musicbert.errors import CheckpointError, ConfigError
from musicbert.text_tower import (
    EmptyTextError,
    TextTower,
    TextTruncatedWarning,
    mean_pool,
    packaged_minilm_dir,
    resolve_text_tower,
)


@pytest.fixture(scope="module")
def tower(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUSICBERT_HOME", str(tmp_path_factory.mktemp("home")))
        yield TextTower.load()


def test_packaged_minilm_loads_with_its_pinned_hash(tower):
    assert tower.dim == 384
    assert tower.sha256 == MINILM_SHA256
    assert tower.model_dir == packaged_minilm_dir()
    assert not tower.model.training


def test_embed_is_mean_pooled_normalised_and_meaningful(tower):
    texts = ["a happy upbeat pop song", "a joyful cheerful tune", "instructions for tax forms"]
    vecs = tower.embed(texts)
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.2
    enc = tower.encode(texts)
    manual = torch.nn.functional.normalize(mean_pool(enc.token_states, enc.attention_mask), dim=-1)
    assert np.allclose(manual.numpy(), vecs, atol=1e-5)


def test_embedding_does_not_depend_on_the_batch(tower):
    alone = tower.embed(["slow sad violin"])
    together = tower.embed(["slow sad violin", "a much longer sentence about loud drums and bass"])
    assert np.allclose(alone[0], together[0], atol=1e-5)


def test_token_states_are_exposed_with_their_mask(tower):
    enc = tower.encode(["jazz", "late night smoky jazz club"])
    assert enc.token_states.shape[0] == 2 and enc.token_states.shape[2] == 384
    assert enc.attention_mask.shape == enc.token_states.shape[:2]
    assert enc.attention_mask[0].sum() < enc.attention_mask[1].sum()
    assert enc.truncated == [False, False]


def test_ten_thousand_characters_are_truncated_and_said_so(tower):
    long = ("music " * 2000)[:10_000]
    with pytest.warns(TextTruncatedWarning, match="truncated"):
        enc = tower.encode([long, "short"])
    assert enc.truncated == [True, False]
    assert enc.token_states.shape[1] == 256
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TextTruncatedWarning)
        vec = tower.embed([long])
    assert np.isfinite(vec).all()


@pytest.mark.parametrize("texts", [[""], ["   \n"], [], ["fine", ""]])
def test_empty_text_is_a_clear_error(tower, texts):
    with pytest.raises(EmptyTextError, match="text"):
        tower.embed(texts)


def test_a_corrupted_weights_file_is_refused_by_name(tmp_path):
    src = packaged_minilm_dir()
    for item in src.iterdir():
        if item.name != "model.safetensors":
            os.symlink(item, tmp_path / item.name)
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 1024)
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*sha256 mismatch"):
        TextTower.load(tmp_path, expected_sha256=MINILM_SHA256)


def test_an_unknown_tower_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="neither"):
        resolve_text_tower(str(tmp_path / "nowhere"))


def test_hashes_are_cached_by_path_size_and_mtime(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"abc")
    real = checksums.file_sha256(path)
    assert real.startswith("ba7816bf")  # sha256("abc")
    cache_file = checksums._cache_file()
    data = json.loads(cache_file.read_text())
    assert len(data) == 1
    # a planted entry under the same key proves the cache is read instead of re-hashing
    key = next(iter(data))
    cache_file.write_text(json.dumps({key: "f" * 64}))
    checksums._memory.clear()
    assert checksums.file_sha256(path) == "f" * 64
    path.write_bytes(b"abcd")  # new size and mtime: a new key, a real hash
    checksums._memory.clear()
    assert checksums.file_sha256(path) == checksums.hashlib.sha256(b"abcd").hexdigest()
    with pytest.raises(CheckpointError, match="weights.bin"):
        checksums.verify_sha256(path, real)
