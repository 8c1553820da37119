"""The torch log-mel must be the spectrogram musicnn was trained on (librosa's)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicbert.audio_io import load
from musicbert.errors import AudioError, ConfigError
from musicbert.logmel import (
    HOP,
    N_MELS,
    PATCH_FRAMES,
    SR,
    LogMel,
    logmel,
    logmel_stream,
    mel_filterbank,
    patchify,
)

librosa = pytest.importorskip("librosa")


def librosa_logmel(wave: np.ndarray) -> np.ndarray:
    mel = librosa.feature.melspectrogram(y=wave, sr=SR, hop_length=HOP, n_fft=512, n_mels=N_MELS)
    return np.log10(10000 * mel.T + 1).astype(np.float32)


def assert_matches_librosa(ours: np.ndarray, ref: np.ndarray) -> None:
    """1e-4 relative: elementwise, with a floor for near-silent bins where float32 FFT
    rounding dominates, and against the spectrogram's range as a whole."""
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)
    assert np.abs(ours - ref).max() <= 1e-4 * np.abs(ref).max()


def test_filterbank_is_librosas_slaney_filterbank():
    ref = librosa.filters.mel(sr=SR, n_fft=512, n_mels=N_MELS)
    ours = mel_filterbank()
    assert ours.dtype == np.float32 and ours.shape == (N_MELS, 257)
    np.testing.assert_array_equal(ours, ref)


def test_matches_librosa_on_real_recordings(recordings):
    for path in recordings:
        wave = load(path, max_seconds=12)
        ours = logmel(wave)
        assert ours.dtype == np.float32
        assert ours.shape == (1 + len(wave) // HOP, N_MELS)
        assert_matches_librosa(ours, librosa_logmel(wave))


def test_matches_reference_patches(shared_dir):
    ref = np.load(shared_dir / "reference" / "musicnn" / "musicnn_reference.npz")
    for clip in ("vibe_ace", "gtzan_country00000"):
        patches = patchify(logmel(ref[f"{clip}/audio_16k"]))
        expected = ref[f"{clip}/logmel_patches"]
        assert patches.shape == expected.shape
        np.testing.assert_allclose(patches, expected, rtol=1e-4, atol=1e-5)


def synthetic_clip(seconds: float, seed: int = 0) -> np.ndarray:
    """A chord, a click track and some noise: energy across the spectrum."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    wave = sum(0.2 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 2500.0))
    wave = wave + 0.05 * rng.standard_normal(t.size)
    wave[:: SR // 4] += 0.8
    return wave.astype(np.float32)


def test_synthetic_audio_matches_librosa():
    wave = synthetic_clip(4.0)
    assert_matches_librosa(logmel(wave), librosa_logmel(wave))


def test_batched_equals_one_by_one():
    waves = np.stack([synthetic_clip(2.0, seed) for seed in range(3)])
    module = LogMel()
    with torch.inference_mode():
        batched = module(torch.from_numpy(waves)).numpy()
    assert batched.shape == (3, 1 + waves.shape[1] // HOP, N_MELS)
    for i in range(3):
        np.testing.assert_allclose(batched[i], logmel(waves[i]), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("splits", [1, 2, 7, 40])
def test_streaming_blocks_equal_whole_signal(splits):
    wave = synthetic_clip(3.3, seed=splits)
    whole = logmel(wave)
    streamed = np.concatenate(list(logmel_stream(np.array_split(wave, splits))))
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, rtol=1e-5, atol=1e-5)


def test_streaming_tiny_blocks_and_short_signal():
    wave = synthetic_clip(0.05)
    streamed = np.concatenate(list(logmel_stream(np.array_split(wave, 30))))
    np.testing.assert_allclose(streamed, logmel(wave), rtol=1e-5, atol=1e-5)


def test_silence_is_zero():
    assert not logmel(np.zeros(SR, np.float32)).any()


@pytest.mark.parametrize(
    "bad",
    [np.zeros(0, np.float32), np.array([0.1, np.nan, 0.2], np.float32), np.zeros((2, 10))],
)
def test_bad_waveforms_raise_audio_error(bad):
    with pytest.raises(AudioError):
        logmel(bad)


def test_stream_of_nothing_raises_audio_error():
    with pytest.raises(AudioError):
        list(logmel_stream([np.zeros(0, np.float32)]))


def test_patchify_non_overlapping_drops_partial_tail():
    frames = np.arange(600 * N_MELS, dtype=np.float32).reshape(600, N_MELS)
    patches = patchify(frames)
    assert patches.shape == (3, PATCH_FRAMES, N_MELS)
    np.testing.assert_array_equal(patches[1], frames[PATCH_FRAMES : 2 * PATCH_FRAMES])


def test_patchify_overlap_and_cover_tail():
    frames = torch.randn(400, N_MELS)
    overlapped = patchify(frames, hop_frames=100)
    assert isinstance(overlapped, torch.Tensor)
    assert overlapped.shape == (3, PATCH_FRAMES, N_MELS)  # starts 0, 100, 200
    covered = patchify(frames, cover_tail=True)
    assert covered.shape == (3, PATCH_FRAMES, N_MELS)
    assert torch.equal(covered[-1], frames[-PATCH_FRAMES:])


def test_patchify_pads_short_clip_to_one_patch():
    frames = np.ones((50, N_MELS), np.float32)
    patches = patchify(frames)
    assert patches.shape == (1, PATCH_FRAMES, N_MELS)
    assert patches[0, :50].all() and not patches[0, 50:].any()
    tensor = patchify(torch.ones(1, N_MELS))
    assert tensor.shape == (1, PATCH_FRAMES, N_MELS)


def test_patchify_rejects_bad_shapes():
    with pytest.raises(AudioError):
        patchify(np.zeros((0, N_MELS), np.float32))
    with pytest.raises(AudioError):
        patchify(np.zeros(10, np.float32))


def test_patchify_rejects_non_positive_lengths():
    with pytest.raises(ConfigError):
        patchify(np.zeros((300, N_MELS), np.float32), hop_frames=0)
