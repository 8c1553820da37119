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
from catalog.analysis.key import PROFILES, fold_chroma
from catalog.analysis.loudness import LoudnessMeter
from catalog.analysis.trust import measured_trust
from catalog.keys import mirex_score


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


# ---- v2: tuning, harmonics, confidence, LUFS, trust table ------------------------------


def _detuned_chord(notes: list[int], cents: float, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    tone = sum(np.sin(2 * np.pi * 440 * 2 ** ((n - 69 + cents / 100) / 12) * t) for n in notes)
    return (0.2 * tone * np.hanning(t.size)).astype(np.float32)


@pytest.mark.parametrize("cents", [-40, 40])
def test_a_detuned_recording_folds_onto_its_key(cents):
    # 40 cents off A440 is closer to the neighbouring semitone's third-bins than to its own
    # centre; the tuning fold still files it under C major.
    chords = [[60, 64, 67], [65, 69, 72], [67, 71, 74], [60, 64, 67]] * 4
    result = analyse_samples(np.concatenate([_detuned_chord(c, cents) for c in chords]))
    assert (result.key, result.mode) == ("C", "major")


def test_fold_chroma_picks_the_tuning_offset():
    chroma = np.zeros(36)
    chroma[[1, 13, 22]] = 1.0  # C, E, G each a third of a semitone sharp
    folded, offset = fold_chroma(chroma)
    assert offset == 1
    assert set(np.flatnonzero(folded)) == {0, 4, 7}


def test_harmonics_keep_a_major_triad_off_its_dominant():
    # Harmonic-rich tones: each note's 3rd harmonic adds its fifth; the profile's
    # harmonics account for it, so C major stays C major, not G major.
    t = np.arange(int(0.5 * SR)) / SR

    def rich(notes):
        tone = sum(
            (0.8**h) * np.sin(2 * np.pi * _midi_hz(n) * (h + 1) * t)
            for n in notes
            for h in range(6)
        )
        return (0.1 * tone * np.hanning(t.size)).astype(np.float32)

    x = np.concatenate(
        [rich(c) for c in [[48, 52, 55], [53, 57, 60], [55, 59, 62], [48, 52, 55]] * 4]
    )
    result = analyse_samples(x)
    assert (result.key, result.mode) == ("C", "major")


def test_key_confidence_is_high_for_a_cadence_and_low_for_a_cluster():
    cadence = analyse_samples(
        _progression([[60, 64, 67], [65, 69, 72], [67, 71, 74], [60, 64, 67]])
    )
    cluster = analyse_samples(np.concatenate([_chord(list(range(60, 72)))] * 8))
    assert cadence.key_confidence > 0.5 > cluster.key_confidence


def test_key_scores_rank_every_profile_the_same_way_on_a_clear_key():
    #                   C    C#   D    Eb   E    F    F#   G    Ab   A    Bb   B
    d_minor = np.array([1.0, 0.5, 3.0, 0.0, 1.0, 2.0, 0.0, 1.5, 0.0, 2.5, 1.0, 0.0])
    for profile in PROFILES:
        assert estimate_key(d_minor, profile)[:2] == ("D", "minor"), profile


@pytest.mark.parametrize(
    ("estimate", "reference", "score"),
    [
        ("C major", "C major", 1.0),
        ("G major", "C major", 0.5),  # fifth above
        ("F major", "C major", 0.5),  # fifth below
        ("A minor", "C major", 0.3),  # relative
        ("C major", "A minor", 0.3),
        ("C minor", "C major", 0.2),  # parallel
        ("D major", "C major", 0.0),
        ("E minor", "E minor", 1.0),
        ("B minor", "E minor", 0.5),
        ("Db major", "C# major", 1.0),  # enharmonic spelling
        (None, "C major", 0.0),
    ],
)
def test_mirex_score(estimate, reference, score):
    assert mirex_score(estimate, reference) == score


def test_onset_free_audio_gets_no_tempo():
    # A held chord, no attacks: nothing repeats, so no tempo (and no error).
    t = np.arange(SR * 20) / SR
    drone = 0.2 * (np.sin(2 * np.pi * 110 * t) + 0.5 * np.sin(2 * np.pi * 165 * t))
    result = analyse_samples(drone.astype(np.float32))
    assert result.tempo is None and not result.silent
    assert result.key is not None


@pytest.mark.parametrize("bpm", [75, 150, 170])
def test_tempo_between_whole_frame_lags_is_not_halved(bpm):
    # 150 bpm is 12.5 onset frames: the beat's autocorrelation peak straddles two lags.
    assert analyse_samples(_clicks(bpm)).tempo == pytest.approx(bpm, rel=0.04)


def test_integrated_loudness_of_a_full_scale_sine():
    # ITU-R BS.1770: a 997 Hz sine at full scale on one channel reads -3.01 LKFS.
    t = np.arange(SR * 5) / SR
    result = analyse_samples(np.sin(2 * np.pi * 997 * t).astype(np.float32))
    # (pyloudnorm's K-filter designed for 16 kHz reads -3.08 there, -3.05 at 48 kHz.)
    assert result.loudness_lufs == pytest.approx(-3.01, abs=0.1)


def test_streamed_loudness_matches_pyloudnorm():
    pyloudnorm = pytest.importorskip("pyloudnorm")
    rng = np.random.default_rng(3)
    t = np.arange(SR * 23) / SR
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * (t % 4 < 2.5)  # phrases and near-silence
    x = (x + 0.02 * rng.standard_normal(t.size) * (t > 8)).astype(np.float32)
    meter = LoudnessMeter(SR)
    for i in range(0, x.size, 12_345):  # blocks that do not align with 100 ms steps
        meter.update(x[i : i + 12_345])
    expected = pyloudnorm.Meter(SR).integrated_loudness(x.astype(np.float64))
    assert meter.integrated() == pytest.approx(expected, abs=0.05)


def test_lufs_ranks_a_bright_track_above_an_equally_rms_dull_one():
    # Same RMS, but K-weighting hears 4 kHz as louder than 100 Hz: LUFS says so, dBFS not.
    t = np.arange(SR * 5) / SR
    dull = analyse_samples((0.3 * np.sin(2 * np.pi * 100 * t)).astype(np.float32))
    bright = analyse_samples((0.3 * np.sin(2 * np.pi * 4000 * t)).astype(np.float32))
    assert dull.loudness_db == pytest.approx(bright.loudness_db, abs=0.05)
    assert bright.loudness_lufs > dull.loudness_lufs + 2.0


def test_too_short_for_a_gating_block_has_no_lufs():
    assert analyse_samples(_chord([60, 64, 67], 0.3)).loudness_lufs is None


def test_shipped_trust_table_is_a_measurement():
    trust = measured_trust()
    key = trust["key"]
    assert 0.0 <= key["hedge_below"] <= 1.0
    assert key["n"] == sum(band["n"] for band in key["bands"]) > 0
    assert 0.0 <= key["exact"] <= key["mirex"] <= 1.0
    assert 0.0 <= trust["tempo"]["strict"] <= trust["tempo"]["any_level"] <= 1.0


def test_real_recording_with_a_stated_key(recordings):
    from catalog.analysis import analyse_file

    name = "Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy"  # E minor (score)
    (path,) = [p for p in recordings if p.stem == name]
    result = analyse_file(path)
    assert f"{result.key} {result.mode}" == "E minor"
    assert result.loudness_lufs is not None and result.loudness_lufs > result.peak_db - 40


def test_real_monophonic_trumpet_key_is_at_worst_a_fifth_off(recordings):
    # Stated "in F, mostly Blues and Dorian": five seconds of one line. v2 hears Bb minor
    # (the benchmark counts it as a fifth error, 0.5); Essentia hears F minor.
    from catalog.analysis import analyse_file

    (path,) = [p for p in recordings if p.stem == "sorohanro_-_solo-trumpet-06"]
    result = analyse_file(path)
    assert mirex_score(f"{result.key} {result.mode}", "F minor") >= 0.5


def test_real_trumpet_loop_tempo_is_a_metrical_level_of_its_stated_90_bpm(recordings):
    from catalog.analysis import analyse_file

    (path,) = [p for p in recordings if p.stem == "sorohanro_-_solo-trumpet-06"]
    tempo = analyse_file(path).tempo
    assert any(abs(tempo / (90 * f) - 1) <= 0.04 for f in (0.5, 1, 2))
