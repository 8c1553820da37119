"""Tempo from the track's summed onset autocorrelation: period, octave choice, pulse clarity.

``acf`` is the mean of per-window autocorrelations of the spectral-flux onset envelope,
each normalised to 1 at lag 0 (``TrackAnalyser`` builds it incrementally). Three steps:

1. Every candidate beat period ``L`` is scored by the autocorrelation at ``L`` and at its
   multiples ``2L, 3L, 4L`` (weights 1, 1/2, 1/3, 1/4): a true beat repeats at every
   multiple, an off-beat accent or a triplet figure does not, so the comb favours
   metrical levels over look-alike periods. A log-normal prior centred on 120 bpm (one
   octave wide) weighs the choice between metrical levels, as in librosa's ``tempo``.
2. The period is refined from the peaks at ``L, 2L, 3L, 4L`` (parabolic interpolation,
   each divided by its multiple): at 31.25 frames/s one frame is 6 % of a 120 bpm beat,
   so one peak alone cannot resolve 4 %.
3. Pulse clarity: how far the chosen peak rises above the autocorrelation's trough
   between half the period and the period (``pulse_clarity``). Onset-free audio has no
   standing peak; below ``PULSE_FLOOR`` no tempo is given (see there for its limits).
"""

from __future__ import annotations

import numpy as np

TEMPO_MIN, TEMPO_MAX, TEMPO_PRIOR_BPM, TEMPO_PRIOR_OCTAVES = 40.0, 240.0, 120.0, 1.0
COMB_WEIGHTS = (1.0, 1 / 2, 1 / 3, 1 / 4)
#: Pulse clarity below which a track gets no tempo. benchmarks/analysis.py found the
#: clarity of beat-less drone samples (0.0-0.6) overlapping that of legato music whose
#: tempo was read right (down to 0.008, a Bach chorale), so only an autocorrelation with
#: no standing peak at all (onset-free audio: a steady tone, a held chord) is refused.
PULSE_FLOOR = 0.005


def _peak(acf: np.ndarray, centre: float, radius: int) -> float | None:
    """Lag of the highest point within ``radius`` of ``centre``, parabolically refined."""
    lo, hi = max(1, int(round(centre)) - radius), min(acf.size - 2, int(round(centre)) + radius)
    if hi < lo:
        return None
    i = lo + int(np.argmax(acf[lo : hi + 1]))
    a, b, c = acf[i - 1], acf[i], acf[i + 1]
    denom = a - 2 * b + c
    return float(i + (0.5 * (a - c) / denom if denom < 0 else 0.0))


def pulse_clarity(acf: np.ndarray, lag: int) -> float:
    """How far the autocorrelation at the beat lag rises above its trough since half that lag.

    A pulse makes the onset autocorrelation dip between beats and peak at the beat; a
    drone or a slow swell makes it fall smoothly, so the peak stands out by nothing.
    """
    lo = max(1, lag // 2)
    return float(acf[lag] - np.min(acf[lo : lag + 1]))


#: Candidate beat periods are tried every quarter frame (2 ms at 31.25 frames/s).
LAG_STEP = 0.25


def tempo_from_acf(acf: np.ndarray, frame_rate: float) -> tuple[float | None, float]:
    """(bpm or None, pulse clarity) from a mean normalised onset autocorrelation."""
    acf = np.asarray(acf, dtype=np.float64)
    n = acf.size
    if n < 4:
        return None, 0.0
    # A beat period between two frame lags splits its peak across both: a light [1 2 1]
    # smoothing joins them, so a period is not outvoted by its double just for landing
    # on a whole number of frames.
    smooth = np.convolve(np.maximum(acf, 0.0), [0.25, 0.5, 0.25], mode="same")
    lag_min = 60.0 * frame_rate / TEMPO_MAX
    lag_max = min(60.0 * frame_rate / TEMPO_MIN, n - 2.0)
    if lag_max <= lag_min:
        return None, 0.0
    lags = np.arange(lag_min, lag_max + LAG_STEP / 2, LAG_STEP)
    grid = np.arange(n, dtype=np.float64)
    comb = np.zeros(lags.size)
    norm = np.zeros(lags.size)
    for k, w in enumerate(COMB_WEIGHTS, start=1):
        inside = k * lags < n - 1
        comb[inside] += w * np.interp(k * lags[inside], grid, smooth)
        norm[inside] += w
    comb /= np.maximum(norm, 1e-12)
    bpm = 60.0 * frame_rate / lags
    prior = np.exp(-0.5 * (np.log2(bpm / TEMPO_PRIOR_BPM) / TEMPO_PRIOR_OCTAVES) ** 2)
    score = comb * prior
    i = int(np.argmax(score))
    if score[i] <= 0:
        return None, 0.0
    best = float(lags[i])
    clarity = pulse_clarity(smooth, int(round(best)))
    estimates, weights = [], []
    for k, w in enumerate(COMB_WEIGHTS, start=1):
        if k * best >= n - 2:
            break
        lag = _peak(acf, k * best, radius=max(1, k))
        if lag is not None and abs(lag - k * best) <= k and acf[int(round(lag))] > 0:
            estimates.append(lag / k)
            weights.append(w * k)  # a longer lag is a finer measure of the period
    period = float(np.average(estimates, weights=weights)) if estimates else best
    return float(60.0 * frame_rate / period), clarity
