"""Global key from a track's summed chroma: tuning fold, key profiles, confidence.

The analyser sums a 36-bin (third-of-a-semitone) chroma of 55-1000 Hz over the track,
each frame normalised to its own maximum first, so a loud tutti does not outvote the
quiet passages. ``fold_chroma`` picks the
tuning (which third of a semitone holds the pitch centres: a recording tuned 30 cents
sharp of A440 still folds onto the right pitch classes) and folds to 12 bins.

The key is the best of 24 by Pearson correlation with a rotated major or minor profile,
each with its first four harmonics folded in (``with_harmonics``).
Profiles are published numbers (tonic first):

- ``krumhansl``: Krumhansl & Kessler (1982) probe-tone ratings (the method before v2);
- ``temperley``: Temperley (2007, *Music and Probability*), Kostka-Payne corpus frequencies;
- ``albrecht``: Albrecht & Shanahan (2013), corpus profiles of classical pieces;
- ``bgate``: Faraldo et al.'s profile from Beatport pop/electronic tracks, as in Essentia;
- ``edma``: Faraldo et al. (2016), electronic dance music, as in Essentia.

``benchmarks/analysis.py`` measures each on real and rendered music; ``DEFAULT_PROFILE``
and the chroma settings are the ones that did best on both sets together (2026-11:
per-frame normalised linear chroma beat power, magnitude and log-compressed chroma;
harmonics in the profile beat none; 1 kHz beat 2 and 4 kHz as the top of the band).
"""

from __future__ import annotations

import numpy as np

PITCH_CLASSES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

PROFILES: dict[str, tuple[np.ndarray, np.ndarray]] = {
    "krumhansl": (
        np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88]),
        np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17]),
    ),
    "temperley": (
        np.array([0.748, 0.060, 0.488, 0.082, 0.670, 0.460,
                  0.096, 0.715, 0.104, 0.366, 0.057, 0.400]),
        np.array([0.712, 0.084, 0.474, 0.618, 0.049, 0.460,
                  0.105, 0.747, 0.404, 0.067, 0.133, 0.330]),
    ),
    "albrecht": (
        np.array([0.238, 0.006, 0.111, 0.006, 0.137, 0.094,
                  0.016, 0.214, 0.009, 0.080, 0.008, 0.081]),
        np.array([0.220, 0.006, 0.104, 0.123, 0.019, 0.103,
                  0.012, 0.214, 0.062, 0.022, 0.061, 0.052]),
    ),
    "bgate": (
        np.array([1.00, 0.00, 0.42, 0.00, 0.53, 0.37, 0.00, 0.77, 0.00, 0.38, 0.21, 0.30]),
        np.array([1.00, 0.00, 0.36, 0.39, 0.00, 0.38, 0.00, 0.74, 0.27, 0.00, 0.42, 0.23]),
    ),
    "edma": (
        np.array([0.16519551, 0.04749026, 0.08293076, 0.06687112, 0.09994645, 0.09274123,
                  0.05294487, 0.13159476, 0.05218986, 0.07443653, 0.06940723, 0.0642515]),
        np.array([0.17235348, 0.05336489, 0.0761009, 0.10043649, 0.05621498, 0.08527853,
                  0.0497915, 0.13451001, 0.07458916, 0.05003023, 0.09187879, 0.05545106]),
    ),
}  # fmt: skip

DEFAULT_PROFILE = "albrecht"
#: Harmonics folded into each profile (Essentia's ``Key`` defaults: 4 harmonics, slope 0.6):
#: a played note also sounds its octave, twelfth and double octave, so the chroma a key
#: produces is the profile plus its fifth-shifted echo. Without this the dominant wins.
HARMONICS, HARMONIC_SLOPE = 4, 0.6
_HARMONIC_PC = (0, 0, 7, 0, 4, 7)  # pitch class of harmonics 1..6 above the fundamental


def with_harmonics(profile: np.ndarray, count: int = HARMONICS) -> np.ndarray:
    return sum(HARMONIC_SLOPE**h * np.roll(profile, _HARMONIC_PC[h]) for h in range(count))


def fold_chroma(chroma36: np.ndarray) -> tuple[np.ndarray, int]:
    """Fold a 36-bin chroma to 12 pitch classes at the tuning its energy says.

    Bin ``3k`` is pitch class ``k`` at A440; the tuning offset (-1, 0 or +1 third of a
    semitone) is the one whose bins hold the most energy, and each pitch class then sums
    the three bins centred on it. Returns (chroma12, offset).
    """
    c = np.asarray(chroma36, dtype=np.float64)
    if c.size == 12:
        return c, 0
    offset = max((-1, 0, 1), key=lambda o: float(c[(np.arange(12) * 3 + o) % 36].sum()))
    centres = np.arange(12) * 3 + offset
    folded = c[(centres - 1) % 36] + c[centres % 36] + c[(centres + 1) % 36]
    return folded, offset


def key_scores(chroma12: np.ndarray, profile: str = DEFAULT_PROFILE) -> np.ndarray:
    """Correlation with each of the 24 keys: rows major/minor, columns tonic C..B."""
    major, minor = (with_harmonics(p) for p in PROFILES[profile])
    x = np.asarray(chroma12, dtype=np.float64)
    x = (x - x.mean()) / (x.std() + 1e-12)
    scores = np.empty((2, 12))
    for row, prof in enumerate((major, minor)):
        for tonic in range(12):
            p = np.roll(prof, tonic)
            scores[row, tonic] = float(np.mean(x * (p - p.mean()) / (p.std() + 1e-12)))
    return scores


def estimate_key(
    chroma: np.ndarray, profile: str = DEFAULT_PROFILE
) -> tuple[str | None, str | None, float | None]:
    """(tonic, mode, confidence) of the best of 24 keys; Nones for flat or empty chroma.

    ``chroma`` is 12 or 36 bins (36 are tuning-folded first). The confidence is the
    winner's margin over the runner-up key, scaled to 0-1 (``confidence_from_scores``).
    """
    c12, _ = fold_chroma(chroma)
    if c12.sum() <= 0 or np.allclose(c12, c12.mean()):
        return None, None, None
    scores = key_scores(c12, profile)
    row, tonic = np.unravel_index(int(np.argmax(scores)), scores.shape)
    mode = "major" if row == 0 else "minor"
    return PITCH_CLASSES[tonic], mode, confidence_from_scores(scores)


#: Margin (in correlation) between the best and second-best key that maps to confidence 1.
MARGIN_FULL = 0.15


def confidence_from_scores(scores: np.ndarray) -> float:
    """How clearly the best key beats the next: 0 for a tie, 1 at a margin of 0.15 or more.

    A margin, not the winner's correlation: relative and parallel keys share most of their
    notes, so a high correlation can still be a near tie between them. The benchmark
    measures accuracy per confidence band and sets the QA hedge from it.
    """
    flat = np.sort(scores.ravel())[::-1]
    return float(min(1.0, max(0.0, (flat[0] - flat[1]) / MARGIN_FULL)))
