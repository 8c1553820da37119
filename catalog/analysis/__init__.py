"""Per-track audio analysis: duration, loudness, tempo, key and mode.

Everything works on the 16 kHz mono float32 blocks that ``musicbert.audio_io.stream``
yields and keeps running sums, so memory stays bounded whatever the length of the file
(the one thing that grows is the loudness gate's 10 floats a second: 0.9 MB for three
hours):

- loudness: running sum of squares and peak -> RMS dBFS and sample-peak dBFS, and the
  integrated loudness in LUFS (ITU-R BS.1770-4 gating, ``loudness.py``), which is what
  "the loudest track" compares;
- one short-time Fourier transform (n_fft 2048, hop 512 = 31.25 frames/s) feeds both
  - a 36-bin chroma (55 Hz-1 kHz, each frame normalised) summed over the track ->
    tuning fold and key by correlation with published key profiles (``key.py``);
  - a spectral-flux onset envelope whose windowed autocorrelation is summed over the
    whole track -> tempo by a comb over metrical multiples, a 120 bpm prior and a
    refined period, or no tempo when no pulse stands out (``tempo.py``).

The method names stored with the features (``*_METHOD``) say exactly which of these ran.
``benchmarks/analysis.py`` measures them on real and rendered music and writes
``catalog/analysis/trust.json`` (accuracy by confidence), which sets the QA's hedges.

Known limits: one global key per track (modulations average out); relative and
parallel major/minor and fifths are the usual confusions. The tempo is one figure for
the track, at the metrical level the prior favours (70-200 bpm); tempo changes average.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from catalog.analysis.key import DEFAULT_PROFILE, PITCH_CLASSES, estimate_key
from catalog.analysis.loudness import LoudnessMeter
from catalog.analysis.tempo import PULSE_FLOOR, tempo_from_acf
from musicbert import audio_io

__all__ = [
    "PITCH_CLASSES",
    "Analysis",
    "TrackAnalyser",
    "analyse_blocks",
    "analyse_file",
    "analyse_samples",
    "estimate_key",
]

SR = audio_io.TARGET_SR
N_FFT = 2048
HOP = 512
FRAME_RATE = SR / HOP  # 31.25 onset frames per second
N_MELS = 64

#: Below this RMS level (dBFS) a track counts as silent: no tempo or key is guessed.
SILENCE_RMS_DB = -60.0
#: Autocorrelation window over the onset envelope: 512 frames = 16.4 s, hop half that.
ACF_WINDOW = 512
#: Fewer seconds than this give no tempo (not enough beats to measure a period).
MIN_TEMPO_SECONDS = 4.0
#: Mean spectral flux (dB rise per mel band per frame) below which a track has no onsets
#: to time, so no tempo: a held tone or chord measures ~0.01, music 0.5-1.5 (and real
#: drone samples, whose noise flickers, 0.5-1.6: see tempo.PULSE_FLOOR).
ONSET_FLOOR_DB = 0.1
#: Mel bands are floored this many dB under each frame's loudest band (librosa's top_db).
TOP_DB = 80.0
#: Frames quieter than this (dB below full scale, magnitude) add nothing to the chroma.
CHROMA_FRAME_FLOOR_DB = -70.0
#: Top of the key's chroma band (Hz).
KEY_FMAX = 1000.0

#: Stored in ``AudioFeatures.*_method`` (at most 128 characters).
TEMPO_METHOD = (
    "onset-acf-v2: spectral-flux onset autocorrelation, comb over 1-4x the period, "
    "prior 120 bpm, refined; none below pulse clarity"
)
KEY_METHOD = (
    f"profile-v2 {DEFAULT_PROFILE}+harmonics: 36-bin chroma to 1 kHz, frames normalised, "
    "tuning fold, 24-key correlation; confidence = margin"
)


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
    loudness_lufs: float | None = None
    tempo_confidence: float | None = None
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
        freqs = np.fft.rfftfreq(N_FFT, 1 / SR)
        # Chroma from 55 Hz to 4 kHz (v1) / 1 kHz (v2, the key): below 55 Hz bins are too
        # coarse; above 1 kHz most energy is overtones, which pull the key to its dominant.
        band = ((freqs >= 55) & (freqs <= 4000)).astype(np.float32)
        band_key = ((freqs >= 55) & (freqs <= KEY_FMAX)).astype(np.float32)
        c12 = librosa.filters.chroma(sr=SR, n_fft=N_FFT, tuning=0.0)
        c36 = librosa.filters.chroma(sr=SR, n_fft=N_FFT, n_chroma=36, tuning=0.0)
        # (1025, 12) and (1025, 36), band-limited, ready for ``spectrum @ matrix``.
        self.chroma12 = (c12 * band).T.astype(np.float32)
        self.chroma36 = (c36 * band_key).T.astype(np.float32)
        # Frame magnitude floor: a full-scale sine's peak bin is about sum(window) / 2.
        self.frame_floor = float(self.window.sum() / 2 * 10 ** (CHROMA_FRAME_FLOOR_DB / 20))

    @classmethod
    def get(cls) -> _Filters:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance


class TrackAnalyser:
    """Feed blocks with ``update``; read the result with ``finish``. Memory is O(1) in length.

    After ``finish``, ``chroma36`` (the key's input) and ``chroma_power`` (the v1 key's
    input: 12-bin power chroma) stay readable for benchmarks.
    """

    def __init__(self) -> None:
        self.filters = _Filters.get()
        self.samples = 0
        self.sum_squares = 0.0
        self.peak = 0.0
        self.pending = np.zeros(0, np.float32)  # samples not yet covered by a full frame
        self.prev_mel: np.ndarray | None = None
        self.chroma36 = np.zeros(36, np.float64)
        self.chroma_power = np.zeros(12, np.float64)
        self.envelope = np.zeros(0, np.float32)  # onset frames awaiting autocorrelation
        self.acf = np.zeros(ACF_WINDOW, np.float64)
        self.acf_windows = 0
        self.flux_sum = 0.0
        self.flux_frames = 0
        self.meter = LoudnessMeter(SR)

    def update(self, block: np.ndarray) -> None:
        block = np.asarray(block, dtype=np.float32)
        if not block.size:
            return
        self.samples += block.size
        self.sum_squares += float(np.dot(block.astype(np.float64), block))
        self.peak = max(self.peak, float(np.max(np.abs(block))))
        self.meter.update(block)
        self._frames(block)

    def _frames(self, block: np.ndarray) -> None:
        buffer = np.concatenate([self.pending, block]) if self.pending.size else block
        n_frames = 0 if buffer.size < N_FFT else 1 + (buffer.size - N_FFT) // HOP
        if n_frames == 0:
            self.pending = buffer
            return
        frames = np.lib.stride_tricks.sliding_window_view(buffer, N_FFT)[::HOP][:n_frames]
        self.pending = buffer[n_frames * HOP :].copy()
        power = np.abs(np.fft.rfft(frames * self.filters.window, axis=1)) ** 2  # (F, 1025)
        power = power.astype(np.float32)
        self.chroma_power += (power @ self.filters.chroma12).sum(axis=0)
        self._add_chroma(np.sqrt(power) @ self.filters.chroma36)
        mel_db = 10.0 * np.log10(power @ self.filters.mel.T + 1e-10)  # (F, N_MELS)
        # Bands more than TOP_DB under the frame's loudest hold still at that floor: window
        # leakage flickering far below the music is not an onset.
        mel_db = np.maximum(mel_db, mel_db.max(axis=1, keepdims=True) - TOP_DB)
        previous = self.prev_mel if self.prev_mel is not None else mel_db[:1]
        stacked = np.vstack([previous, mel_db])
        flux = np.maximum(0.0, np.diff(stacked, axis=0)).mean(axis=1).astype(np.float32)
        self.prev_mel = mel_db[-1:]
        self.flux_sum += float(flux.sum())
        self.flux_frames += flux.size
        self.envelope = np.concatenate([self.envelope, flux])
        self._drain_envelope(final=False)

    def _add_chroma(self, chroma: np.ndarray) -> None:
        """Each audible frame counts once: normalised to its maximum."""
        peak = chroma.max(axis=1, keepdims=True)
        audible = peak[:, 0] > self.filters.frame_floor
        if audible.any():
            normed = chroma[audible] / peak[audible]
            self.chroma36 += normed.sum(axis=0)

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
            self._frames(np.pad(pending, (0, N_FFT - pending.size)))
        self._drain_envelope(final=True)
        tempo = clarity = None
        onsets = self.flux_sum / max(self.flux_frames, 1) >= ONSET_FLOOR_DB
        if not silent and onsets and duration >= MIN_TEMPO_SECONDS and self.acf_windows:
            tempo, clarity = tempo_from_acf(self.acf / self.acf_windows, FRAME_RATE)
            if clarity < PULSE_FLOOR:
                tempo = None
        key = mode = confidence = None
        if not silent:
            key, mode, confidence = estimate_key(self.chroma36)
        lufs = self.meter.integrated()
        return Analysis(
            duration=round(duration, 4),
            loudness_db=round(rms_db, 2),
            peak_db=round(peak_db, 2),
            silent=silent,
            tempo=None if tempo is None else round(tempo, 2),
            key=key,
            mode=mode,
            key_confidence=None if confidence is None else round(confidence, 4),
            loudness_lufs=None if lufs is None else round(lufs, 2),
            tempo_confidence=None if clarity is None else round(clarity, 4),
        )


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
