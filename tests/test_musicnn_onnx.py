"""musicnn on ONNX Runtime gives torch's numbers; the tagger and embedder use it on a CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicbert.logmel import PATCH_FRAMES, logmel, patchify
from musicbert.musicnn import MODEL_NAMES, load_musicnn
from musicbert.musicnn_onnx import BACKEND_ENV, OUTPUTS, OnnxMusicnn, onnx_musicnn
from musicbert.tagger import Tagger

pytest.importorskip("onnx", reason="the ONNX export needs the onnx package")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("onnx_home")
        mp.setenv("MUSICBERT_HOME", str(path))
        yield path


@pytest.fixture(scope="module")
def patches(home) -> torch.Tensor:
    """Real log-mel: a chord with a beat and noise, plus silence (log-mel 0)."""
    sr = 16_000
    t = np.arange(sr * 10) / sr
    rng = np.random.default_rng(0)
    wave = sum(0.2 * np.sin(2 * np.pi * f * t) for f in (220, 277, 330))
    wave = wave * (1 + np.sign(np.sin(2 * np.pi * 2 * t))) / 2 + 0.02 * rng.normal(size=t.size)
    frames = logmel(wave.astype(np.float32))
    real = torch.from_numpy(patchify(frames, PATCH_FRAMES))
    return torch.cat([real, torch.zeros(1, *real.shape[1:])])


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_onnx_outputs_equal_torch(home, patches, name):
    model = load_musicnn(name)
    fast = onnx_musicnn(model, "cpu", threads=1)
    assert isinstance(fast, OnnxMusicnn)
    with torch.inference_mode():
        expected = model(patches)
    got = fast(patches)
    for field in OUTPUTS:
        want, have = getattr(expected, field), getattr(got, field)
        assert have.shape == want.shape and have.dtype == torch.float32
        scale = float(want.abs().max()) or 1.0
        assert float((have - want).abs().max()) <= 1e-5 * scale + 1e-6, field
    # the export is cached by weights digest: a second session reads the same file
    from musicbert.paths import cache_dir

    assert len(list(cache_dir("musicnn").glob(f"{name}-*.onnx"))) == 1
    assert isinstance(onnx_musicnn(model, "cpu"), OnnxMusicnn)


def test_the_tagger_runs_onnx_on_a_cpu_and_torch_when_told(home, patches, monkeypatch):
    tagger = Tagger(models=("MSD_musicnn",))
    assert isinstance(tagger.runner("MSD_musicnn"), OnnxMusicnn)
    fast = tagger.tag_patches(patches)["MSD_musicnn"]
    monkeypatch.setenv(BACKEND_ENV, "torch")
    plain = Tagger(models=("MSD_musicnn",))
    assert plain.runner("MSD_musicnn") is plain.model("MSD_musicnn")
    np.testing.assert_allclose(fast, plain.tag_patches(patches)["MSD_musicnn"], atol=1e-5)


def test_a_gpu_device_keeps_torch(home):
    model = load_musicnn("MTT_musicnn")
    assert onnx_musicnn(model, torch.device("cuda")) is None
