"""Small synthesised audio files for ingestion tests (soundfile to write, mutagen to tag)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from catalog.tags import write_tags


def tone(seconds: float = 2.0, freq: float = 440.0, sr: int = 22050, seed: int = 0) -> np.ndarray:
    """A decaying tone with clicks twice a second: something with a key, a tempo and a level."""
    t = np.arange(int(seconds * sr)) / sr
    signal = 0.3 * np.sin(2 * np.pi * freq * t) * np.exp(-2.0 * (t % 0.5))
    signal += 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    return signal.astype(np.float32)


def write_audio(
    path: str | os.PathLike,
    seconds: float = 2.0,
    freq: float = 440.0,
    sr: int = 22050,
    tags: dict | None = None,
    seed: int = 0,
) -> Path:
    """Write a tone in the format the extension names (wav, flac, ogg, mp3); tag it if asked."""
    raw = os.fsencode(os.fspath(path))
    ext = os.path.splitext(raw)[1].lower()
    fmt = {b".wav": "WAV", b".flac": "FLAC", b".ogg": "OGG", b".mp3": "MP3"}[ext]
    subtype = {b".ogg": "VORBIS", b".mp3": "MPEG_LAYER_III"}.get(ext)
    sf.write(raw, tone(seconds, freq, sr, seed), sr, format=fmt, subtype=subtype)
    if tags:
        write_tags(Path(os.fsdecode(raw)), tags)
    return Path(os.fsdecode(raw))
