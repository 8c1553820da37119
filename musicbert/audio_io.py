"""Decoding audio to the one form every analysis wants: mono float32 at 16 kHz.

soundfile (libsndfile) decodes WAV, FLAC, Ogg Vorbis, Opus and MP3; soxr
resamples. ``stream`` yields fixed-size blocks so that a three-hour file never
sits whole in memory; ``load`` is the convenience for short clips.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from musicbert.errors import AudioError, UnsupportedFormatError

TARGET_SR = 16_000
SUPPORTED_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3"})


@dataclass(frozen=True)
class AudioInfo:
    """What the container says, before any decoding."""

    path: Path
    samplerate: int
    channels: int
    frames: int
    format: str

    @property
    def duration(self) -> float:
        return self.frames / self.samplerate if self.samplerate else 0.0


def is_supported(path: str | Path) -> bool:
    return Path(path).suffix.lower() in SUPPORTED_EXTENSIONS


def probe(path: str | Path) -> AudioInfo:
    """Read the header; raise ``AudioError`` with a one-line reason when unusable."""
    path = Path(path)
    if not is_supported(path):
        raise UnsupportedFormatError(
            f"{path.name}: unsupported format {path.suffix or '(no extension)'!r}; "
            f"supported: {', '.join(sorted(SUPPORTED_EXTENSIONS))}"
        )
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AudioError(f"{path.name}: cannot read file ({exc.strerror})") from exc
    if not path.is_file():
        raise AudioError(f"{path.name}: not a regular file")
    if size == 0:
        raise AudioError(f"{path.name}: empty file (0 bytes)")
    try:
        info = sf.info(os.fsencode(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"{path.name}: not decodable audio ({_short(exc)})") from exc
    if info.samplerate <= 0 or info.channels <= 0:
        raise AudioError(f"{path.name}: header declares no samples")
    return AudioInfo(path, info.samplerate, info.channels, max(info.frames, 0), info.format)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average channels; accept (n,) or (n, channels)."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=1, dtype=np.float32)
    elif samples.ndim != 1:
        raise AudioError(f"expected 1-D or (frames, channels) audio, got shape {samples.shape}")
    return samples


def check_finite(samples: np.ndarray, what: str = "audio") -> None:
    if not np.isfinite(samples).all():
        raise AudioError(f"{what}: contains NaN or infinite samples; re-export the file")


def prepare_waveform(samples: np.ndarray, samplerate: int, target_sr: int = TARGET_SR) -> np.ndarray:
    """An in-memory waveform at any rate and channel count -> mono float32 at ``target_sr``."""
    if samplerate <= 0:
        raise AudioError(f"invalid sample rate {samplerate}")
    mono = to_mono(samples)
    check_finite(mono, "waveform")
    if samplerate != target_sr and mono.size:
        mono = soxr.resample(mono, samplerate, target_sr, quality="HQ").astype(np.float32)
    return np.ascontiguousarray(mono, dtype=np.float32)


def stream(
    path: str | Path, target_sr: int = TARGET_SR, block_seconds: float = 30.0
) -> Iterator[np.ndarray]:
    """Yield mono float32 blocks at ``target_sr`` (the last one may be shorter).

    Memory stays bounded by one block whatever the file's length.
    """
    info = probe(path)
    block_frames = max(1, int(block_seconds * info.samplerate))
    resampler = (
        soxr.ResampleStream(info.samplerate, target_sr, 1, dtype="float32", quality="HQ")
        if info.samplerate != target_sr
        else None
    )
    produced = False
    try:
        with sf.SoundFile(os.fsencode(info.path)) as handle:
            while True:
                block = handle.read(block_frames, dtype="float32", always_2d=True)
                last = len(block) < block_frames
                mono = block.mean(axis=1, dtype=np.float32)
                check_finite(mono, info.path.name)
                out = resampler.resample_chunk(mono, last=last) if resampler else mono
                if out.size:
                    produced = True
                    yield np.ascontiguousarray(out, dtype=np.float32)
                if last:
                    break
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{info.path.name}: decoding failed part-way ({_short(exc)})") from exc
    if not produced:
        raise AudioError(f"{info.path.name}: decodes to no samples")


def load(path: str | Path, target_sr: int = TARGET_SR, max_seconds: float | None = None) -> np.ndarray:
    """The whole file (or its first ``max_seconds``) as one mono float32 array."""
    blocks: list[np.ndarray] = []
    have = 0
    limit = None if max_seconds is None else int(max_seconds * target_sr)
    for block in stream(path, target_sr):
        blocks.append(block)
        have += block.size
        if limit is not None and have >= limit:
            break
    audio = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    return audio[:limit] if limit is not None else audio


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
