"""Per-track audio analysis: duration, loudness, tempo, key and mode.

Everything works on the 16 kHz mono float32 blocks that ``musicbert.audio_io.stream``
yields and keeps only running sums, so memory stays bounded whatever the length of
the file (a three-hour recording costs the same memory as a three-minute one):

- loudness: running sum of squares and peak -> RMS dBFS and sample-peak dBFS;
- one short-time Fourier transform (n_fft 2048, hop 512 = 31.25 frames/s) feeds both
  - a chroma vector summed over the whole track -> key by correlation with the
    Krumhansl-Kessler key profiles over all 24 keys;
  - a spectral-flux onset envelope whose windowed autocorrelation is summed over the
    whole track -> tempo at the strongest periodicity, weighted by a log-normal prior
    centred on 120 bpm (the same idea as librosa's ``tempo``, done incrementally).

The method names stored with the features (``*_METHOD``) say exactly which of these ran.

Known limits: the tempo is the strongest periodicity of the onset envelope, so real
music can read at double or half its notated tempo (the prior favours 70-200 bpm; a
click track at 60 bpm still reads 60); drones without onsets get a meaningless
tempo. The key is one global key per track (modulations average out) and relative
major/minor pairs are the usual confusion; ``key_confidence`` is the winning
correlation (about 0.8-0.95 for clear tonal music, under 0.5 for ambiguous audio).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from musicbert import audio_io

SR = audio_io.TARGET_SR
N_FFT = 2048
HOP = 512
FRAME_RATE = SR / HOP  # 31.25 onset frames per second
N_MELS = 64

#: Below this RMS level (dBFS) a track counts as silent: no tempo or key is guessed.
SILENCE_RMS_DB = -60.0
#: Tempo search range (bpm) and the prior that resolves octave ambiguity.
TEMPO_MIN, TEMPO_MAX, TEMPO_PRIOR_BPM, TEMPO_PRIOR_OCTAVES = 40.0, 240.0, 120.0, 1.0
#: Autocorrelation window over the onset envelope: 512 frames = 16.4 s, hop half that.
ACF_WINDOW = 512
#: Fewer seconds than this give no tempo (not enough beats to measure a period).
MIN_TEMPO_SECONDS = 4.0

#: Stored in ``AudioFeatures.*_method`` (at most 128 characters).
TEMPO_METHOD = (
    "onset-acf-v1: spectral-flux onsets, windowed autocorrelation summed over the track, "
    "prior 120 bpm"
)
KEY_METHOD = (
    "krumhansl-kessler-v1: STFT chroma summed over the track, correlation with 24 key profiles"
)

PITCH_CLASSES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# Krumhansl & Kessler (1982) probe-tone ratings, tonic first.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass
class Analysis:
    """What one pass over a track measured (all plain values: it crosses process borders)."""

    duration: float
    loudness_db: float | None
    peak_db: float | None
    silent: bool
    tempo: float | None
    key: str | None
    mode: str | None
    key_confidence: float | None
    tempo_method: str = TEMPO_METHOD
    key_method: str = KEY_METHOD

    def to_dict(self) -> dict:
        return asdict(self)


def _db(value: float) -> float:
    return float(20.0 * math.log10(value)) if value > 0 else -120.0


class _Filters:
    """Filterbanks built once per process (librosa is imported only here)."""

    _instance: _Filters | None = None

    def __init__(self) -> None:
        import librosa

        self.window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)
        self.mel = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS).astype(np.float32)
        self.chroma = librosa.filters.chroma(sr=SR, n_fft=N_FFT, tuning=0.0).astype(np.float32)
        freqs = np.fft.rfftfreq(N_FFT, 1 / SR)
        # Chroma from 55 Hz to 4 kHz: below, bins are too coarse; above, mostly overtones/noise.
        self.chroma_band = ((freqs >= 55) & (freqs <= 4000)).astype(np.float32)

    @classmethod
    def get(cls) -> _Filters:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance


class TrackAnalyser:
    """Feed blocks with ``update``; read the result with ``finish``. Memory is O(1) in length."""

    def __init__(self) -> None:
        self.filters = _Filters.get()
        self.samples = 0
        self.sum_squares = 0.0
        self.peak = 0.0
        self.pending = np.zeros(0, np.float32)  # samples not yet covered by a full frame
        self.prev_mel: np.ndarray | None = None
        self.chroma = np.zeros(12, np.float64)
        self.envelope = np.zeros(0, np.float32)  # onset frames awaiting autocorrelation
        self.acf = np.zeros(ACF_WINDOW, np.float64)
        self.acf_windows = 0

    def update(self, block: np.ndarray) -> None:
        block = np.asarray(block, dtype=np.float32)
        if not block.size:
            return
        self.samples += block.size
        self.sum_squares += float(np.dot(block.astype(np.float64), block))
        self.peak = max(self.peak, float(np.max(np.abs(block))))
        buffer = np.concatenate([self.pending, block]) if self.pending.size else block
        n_frames = 0 if buffer.size < N_FFT else 1 + (buffer.size - N_FFT) // HOP
        if n_frames == 0:
            self.pending = buffer
            return
        frames = np.lib.stride_tricks.sliding_window_view(buffer, N_FFT)[::HOP][:n_frames]
        self.pending = buffer[n_frames * HOP :].copy()
        power = np.abs(np.fft.rfft(frames * self.filters.window, axis=1)) ** 2  # (F, 1025)
        power = power.astype(np.float32)
        self.chroma += ((power * self.filters.chroma_band) @ self.filters.chroma.T).sum(axis=0)
        mel_db = 10.0 * np.log10(power @ self.filters.mel.T + 1e-10)  # (F, N_MELS)
        previous = self.prev_mel if self.prev_mel is not None else mel_db[:1]
        stacked = np.vstack([previous, mel_db])
        flux = np.maximum(0.0, np.diff(stacked, axis=0)).mean(axis=1).astype(np.float32)
        self.prev_mel = mel_db[-1:]
        self.envelope = np.concatenate([self.envelope, flux])
        self._drain_envelope(final=False)

    def _drain_envelope(self, final: bool) -> None:
        step = ACF_WINDOW // 2
        while self.envelope.size >= ACF_WINDOW or (final and self.envelope.size > step):
            window = self.envelope[:ACF_WINDOW]
            self._add_acf(window)
            self.envelope = self.envelope[step:]
            if self.envelope.size < ACF_WINDOW and final:
                break
        if final and self.acf_windows == 0 and self.envelope.size:
            self._add_acf(self.envelope)

    def _add_acf(self, window: np.ndarray) -> None:
        x = window.astype(np.float64) - float(window.mean())
        x *= np.hanning(x.size) if x.size > 2 else 1.0
        n = int(2 ** math.ceil(math.log2(max(2 * x.size, 2))))
        spectrum = np.fft.rfft(x, n)
        acf = np.fft.irfft(np.abs(spectrum) ** 2, n)[: min(ACF_WINDOW, x.size)]
        if acf[0] > 0:
            self.acf[: acf.size] += acf / acf[0]
            self.acf_windows += 1

    def finish(self) -> Analysis:
        duration = self.samples / SR
        if self.samples == 0:
            return Analysis(0.0, None, None, True, None, None, None, None)
        rms_db = _db(math.sqrt(self.sum_squares / self.samples))
        peak_db = _db(self.peak)
        silent = rms_db < SILENCE_RMS_DB
        if self.pending.size and self.prev_mel is None:
            # Shorter than one frame (128 ms): analyse the zero-padded remainder.
            pending, self.pending = self.pending, np.zeros(0, np.float32)
            self.samples -= pending.size
            self.update(np.pad(pending, (0, N_FFT - pending.size)))
            self.samples -= N_FFT - pending.size
        self._drain_envelope(final=True)
        tempo = None if silent or duration < MIN_TEMPO_SECONDS else self._tempo()
        key = mode = confidence = None
        if not silent:
            key, mode, confidence = estimate_key(self.chroma)
        return Analysis(
            duration=round(duration, 4),
            loudness_db=round(rms_db, 2),
            peak_db=round(peak_db, 2),
            silent=silent,
            tempo=None if tempo is None else round(tempo, 2),
            key=key,
            mode=mode,
            key_confidence=None if confidence is None else round(confidence, 4),
        )

    def _tempo(self) -> float | None:
        if self.acf_windows == 0:
            return None
        return tempo_from_acf(self.acf / self.acf_windows)


def tempo_from_acf(acf: np.ndarray) -> float | None:
    """The bpm of the strongest prior-weighted autocorrelation peak (parabolic refinement)."""
    lags = np.arange(acf.size, dtype=np.float64)
    with np.errstate(divide="ignore"):
        bpm = np.where(lags > 0, 60.0 * FRAME_RATE / np.maximum(lags, 1e-9), np.inf)
    valid = (bpm >= TEMPO_MIN) & (bpm <= TEMPO_MAX)
    if not valid.any():
        return None
    prior = np.exp(
        -0.5 * (np.log2(np.where(valid, bpm, 1.0) / TEMPO_PRIOR_BPM) / TEMPO_PRIOR_OCTAVES) ** 2
    )
    score = np.where(valid, np.maximum(acf, 0.0) * prior, -np.inf)
    best = int(np.argmax(score))
    if not np.isfinite(score[best]) or score[best] <= 0:
        return None
    lag = float(best)
    if 0 < best < acf.size - 1:
        a, b, c = acf[best - 1], acf[best], acf[best + 1]
        denom = a - 2 * b + c
        if denom < 0:
            lag += 0.5 * (a - c) / denom
    return float(60.0 * FRAME_RATE / lag)


def estimate_key(chroma: np.ndarray) -> tuple[str | None, str | None, float | None]:
    """Best of 24 keys by Pearson correlation of the chroma with rotated K-K profiles."""
    chroma = np.asarray(chroma, dtype=np.float64)
    if chroma.sum() <= 0 or np.allclose(chroma, chroma.mean()):
        return None, None, None
    best: tuple[float, int, str] = (-2.0, 0, "major")
    for mode, profile in (("major", KK_MAJOR), ("minor", KK_MINOR)):
        for tonic in range(12):
            r = float(np.corrcoef(chroma, np.roll(profile, tonic))[0, 1])
            if r > best[0]:
                best = (r, tonic, mode)
    return PITCH_CLASSES[best[1]], best[2], best[0]


def analyse_blocks(blocks: Iterable[np.ndarray]) -> Analysis:
    analyser = TrackAnalyser()
    for block in blocks:
        analyser.update(block)
    return analyser.finish()


def analyse_samples(samples: np.ndarray, block_seconds: float = 30.0) -> Analysis:
    """Analyse an in-memory 16 kHz mono signal (tests, synthesised audio)."""
    step = max(1, int(block_seconds * SR))
    return analyse_blocks(samples[i : i + step] for i in range(0, max(samples.size, 1), step))


def analyse_file(path: str | Path) -> Analysis:
    """Decode with bounded memory and analyse; raises ``AudioError`` for unusable files."""
    return analyse_blocks(audio_io.stream(path, SR, block_seconds=30.0))
