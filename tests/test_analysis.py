"""Analysis on synthesised signals whose tempo, key and level are known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from catalog.analysis import (
    ACF_WINDOW,
    N_FFT,
    SR,
    TrackAnalyser,
    analyse_samples,
    estimate_key,
)


def _midi_hz(note: int) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def _chord(notes: list[int], seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    tone = sum(np.sin(2 * np.pi * _midi_hz(n) * t) for n in notes)
    return (0.2 * tone * np.hanning(t.size)).astype(np.float32)


def _progression(chords: list[list[int]], repeats: int = 4) -> np.ndarray:
    return np.concatenate([_chord(c) for c in chords * repeats])


def _clicks(bpm: float, seconds: float = 30.0) -> np.ndarray:
    x = np.zeros(int(seconds * SR), np.float32)
    rng = np.random.default_rng(0)
    period = 60.0 / bpm
    for k in range(int(seconds / period)):
        start = int(k * period * SR)
        x[start : start + 160] += 0.5 * rng.standard_normal(min(160, x.size - start))
    return x


def test_c_major_cadence_is_c_major():
    # I - IV - V - I in C major.
    result = analyse_samples(_progression([[60, 64, 67], [65, 69, 72], [67, 71, 74], [60, 64, 67]]))
    assert (result.key, result.mode) == ("C", "major")
    assert result.key_confidence > 0.6


def test_a_minor_cadence_is_a_minor():
    # i - iv - V - i in A minor (harmonic minor dominant E major).
    result = analyse_samples(_progression([[57, 60, 64], [62, 65, 69], [64, 68, 71], [57, 60, 64]]))
    assert (result.key, result.mode) == ("A", "minor")


def test_d_major_scale_is_d_major():
    scale = [62, 64, 66, 67, 69, 71, 73, 74, 62, 66, 69, 62]
    result = analyse_samples(np.concatenate([_chord([n], 0.4) for n in scale * 3]))
    assert (result.key, result.mode) == ("D", "major")


@pytest.mark.parametrize("bpm", [90, 120, 140])
def test_click_track_tempo(bpm):
    result = analyse_samples(_clicks(bpm))
    assert result.tempo == pytest.approx(bpm, abs=2.0)


def test_slow_click_track_keeps_its_octave():
    # The prior is centred on 120 bpm; a clear 60 bpm pulse still reads as 60, not 120.
    assert analyse_samples(_clicks(60)).tempo == pytest.approx(60, abs=2.0)


def test_loudness_of_a_full_scale_sine():
    t = np.arange(SR * 5) / SR
    result = analyse_samples(np.sin(2 * np.pi * 440 * t).astype(np.float32))
    assert result.peak_db == pytest.approx(0.0, abs=0.1)
    assert result.loudness_db == pytest.approx(-3.01, abs=0.1)  # RMS of a sine is 1/sqrt(2)
    assert not result.silent


def test_silence_is_flagged_without_tempo_or_key():
    result = analyse_samples(np.zeros(SR * 10, np.float32))
    assert result.silent
    assert result.tempo is None and result.key is None


def test_very_short_signals():
    tenth = analyse_samples(_chord([60, 64, 67], 0.1))  # shorter than one STFT frame
    assert tenth.duration == pytest.approx(0.1, abs=1e-3)
    assert tenth.key is not None and tenth.tempo is None
    fifth = analyse_samples(_chord([60, 64, 67], 0.2))
    assert fifth.duration == pytest.approx(0.2, abs=1e-3) and fifth.tempo is None


def test_empty_input_is_silent():
    assert TrackAnalyser().finish().silent


def test_block_size_does_not_change_the_result():
    x = _clicks(120, 40) + _progression([[60, 64, 67], [65, 69, 72]], 40)[: SR * 40]
    whole = analyse_samples(x, block_seconds=40)
    pieces = analyse_samples(x, block_seconds=3.3)
    assert pieces.tempo == pytest.approx(whole.tempo, abs=0.5)
    assert (pieces.key, pieces.mode) == (whole.key, whole.mode)
    assert pieces.loudness_db == pytest.approx(whole.loudness_db, abs=0.01)


def test_state_stays_bounded_however_long_the_stream():
    analyser = TrackAnalyser()
    block = _clicks(100, 30)
    for _ in range(12):  # 6 minutes
        analyser.update(block)
        assert analyser.envelope.size < ACF_WINDOW + SR * 30 // 512
        assert analyser.pending.size < N_FFT
    assert analyser.finish().tempo == pytest.approx(100, abs=2.0)


def test_estimate_key_on_profiles_and_flat_chroma():
    assert estimate_key(np.ones(12)) == (None, None, None)
    g_major = np.zeros(12)
    g_major[[7, 11, 2]] = 1.0  # G B D
    assert estimate_key(g_major)[:2] == ("G", "major")
