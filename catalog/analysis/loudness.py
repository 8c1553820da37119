"""Integrated loudness (ITU-R BS.1770-4 / EBU R128), measured while streaming.

The K-weighting filter (pre-filter high shelf + RLB high-pass) is pyloudnorm's design for
the sample rate, applied block by block with its state carried over; the filtered signal's
mean square is kept per 100 ms step (10 floats a second, 1.4 MB for a three-hour file), and
the 400 ms gating blocks (75 % overlap), the absolute gate at -70 LUFS and the relative gate
at -10 LU are applied at the end, exactly as ``pyloudnorm.Meter.integrated_loudness`` does
on the whole signal (tests/test_analysis.py checks the two agree).

The audio reaching the analysis is 16 kHz mono: a stereo file's channels are averaged
before measurement, so a track whose channels differ reads a little lower than a
stereo meter would say, and content above 8 kHz (which K-weighting lifts by 4 dB) is
gone. Both shift every track alike, so comparisons between tracks ("the loudest")
hold; absolute figures are within about 1 LU of a full-band stereo meter on music.
"""

from __future__ import annotations

import math

import numpy as np

BLOCK_SECONDS = 0.4
STEP_SECONDS = 0.1  # 75 % overlap
ABSOLUTE_GATE = -70.0
RELATIVE_GATE = -10.0


def _k_weighting(rate: int) -> list[tuple[np.ndarray, np.ndarray]]:
    import pyloudnorm

    meter = pyloudnorm.Meter(rate)
    return [(f.b, f.a) for f in meter._filters.values()]


class LoudnessMeter:
    """Feed float blocks with ``update``; ``integrated()`` gives LUFS or None when too short."""

    def __init__(self, rate: int) -> None:
        from scipy.signal import lfilter_zi

        self.rate = rate
        self.filters = _k_weighting(rate)
        self.states = [lfilter_zi(b, a) * 0.0 for b, a in self.filters]
        self.step = int(round(STEP_SECONDS * rate))
        self.carry = np.zeros(0, np.float64)  # filtered samples short of a 100 ms step
        self.steps: list[np.ndarray] = []  # per-step sums of squares

    def update(self, block: np.ndarray) -> None:
        from scipy.signal import lfilter

        y = np.asarray(block, dtype=np.float64)
        for i, (b, a) in enumerate(self.filters):
            y, self.states[i] = lfilter(b, a, y, zi=self.states[i])
        y = np.concatenate([self.carry, y]) if self.carry.size else y
        n = y.size // self.step
        if n:
            squares = np.square(y[: n * self.step]).reshape(n, self.step).sum(axis=1)
            self.steps.append(squares)
        self.carry = y[n * self.step :].copy()

    def integrated(self) -> float | None:
        per_step = np.concatenate(self.steps) if self.steps else np.zeros(0)
        per_block = int(round(BLOCK_SECONDS / STEP_SECONDS))
        if per_step.size < per_block:
            return None
        # 400 ms blocks every 100 ms: the sum of four consecutive step energies.
        sums = np.convolve(per_step, np.ones(per_block), mode="valid")
        z = sums / (BLOCK_SECONDS * self.rate)
        with np.errstate(divide="ignore"):
            levels = -0.691 + 10.0 * np.log10(z)
        gated = levels >= ABSOLUTE_GATE
        if not gated.any():
            return None
        relative = -0.691 + 10.0 * math.log10(float(z[gated].mean())) + RELATIVE_GATE
        gated &= levels > relative
        if not gated.any():
            return None
        return float(-0.691 + 10.0 * math.log10(float(z[gated].mean())))
