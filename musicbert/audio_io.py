"""Decoding audio to the one form every analysis wants: mono float32 at 16 kHz.

soundfile (libsndfile) decodes WAV, FLAC, Ogg Vorbis, Opus and MP3; soxr
resamples. ``stream`` yields fixed-size blocks so that a three-hour file never
sits whole in memory; ``load`` is the convenience for short clips. What a file's
container declares is read by ``musicbert.audio_containers``.

Damaged files: given a ``DecodeReport``, ``stream`` also checks that what decodes
is what the container declares (a WAV whose data chunk claims more or fewer bytes
than the file holds, an Ogg stream without its end-of-stream page, a FLAC or MP3
that decodes shorter than its header says) and, when decoding fails part-way,
ends with the audio decoded so far instead of raising; ``report.problem`` says
what was wrong in one line. Native decoders' own notes (mpg123's "Illegal
Audio-MPEG-Header", libsndfile's warnings) are kept off the terminal.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from musicbert.audio_containers import (
    AudioInfo,
    container_problem,
    length_tolerance,
    looks_like_audio,
    say_seconds,
)
from musicbert.errors import AudioError, UnsupportedFormatError

TARGET_SR = 16_000
SUPPORTED_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3"})


@dataclass
class DecodeReport:
    """What one streamed decode found; ``stream`` fills it in as it goes.

    ``problem`` is None for an intact file, else one line saying why the decoded audio
    is not all the file should hold (truncated, mis-declared, failed part-way).
    """

    declared_seconds: float = 0.0
    decoded_seconds: float = 0.0
    problem: str | None = None


def is_supported(path: str | Path) -> bool:
    return Path(path).suffix.lower() in SUPPORTED_EXTENSIONS


# ---------------------------------------------------------------- native decoder chatter

_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_saved: int | None = None


@contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null while a native decoder runs.

    mpg123 and libsndfile print notes ("Illegal Audio-MPEG-Header", "Xing stream size
    off") straight to the C stderr, which lands in the middle of a progress bar; the
    problems that matter reach the person as a one-line reason instead. Nested and
    threaded uses share one redirection (the descriptor is process-wide).
    """
    global _quiet_depth, _quiet_saved
    with _quiet_lock:
        if _quiet_depth == 0:
            try:
                sys.stderr.flush()
            except (AttributeError, OSError, ValueError):
                pass
            saved = None
            try:
                saved = os.dup(2)
                null = os.open(os.devnull, os.O_WRONLY)
            except OSError:  # no descriptor 2, or no /dev/null: leave stderr alone
                if saved is not None:
                    os.close(saved)
                    saved = None
            else:
                os.dup2(null, 2)
                os.close(null)
            _quiet_saved = saved
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0 and _quiet_saved is not None:
                os.dup2(_quiet_saved, 2)
                os.close(_quiet_saved)
                _quiet_saved = None


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
        with open(os.fsencode(path), "rb") as handle:
            head = handle.read(4096)
    except OSError as exc:
        raise AudioError(f"{path.name}: cannot read file ({exc.strerror})") from exc
    if not looks_like_audio(head):
        raise AudioError(f"{path.name}: not an audio file (unrecognised format)")
    try:
        with quiet_native_stderr():
            info = sf.info(os.fsencode(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"{path.name}: not decodable audio ({_decoder_reason(exc)})") from exc
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


def prepare_waveform(
    samples: np.ndarray, samplerate: int, target_sr: int = TARGET_SR
) -> np.ndarray:
    """An in-memory waveform at any rate and channel count -> mono float32 at ``target_sr``."""
    if samplerate <= 0:
        raise AudioError(f"invalid sample rate {samplerate}")
    mono = to_mono(samples)
    check_finite(mono, "waveform")
    if samplerate != target_sr and mono.size:
        mono = soxr.resample(mono, samplerate, target_sr, quality="HQ").astype(np.float32)
    return np.ascontiguousarray(mono, dtype=np.float32)


def stream(
    path: str | Path,
    target_sr: int = TARGET_SR,
    block_seconds: float = 30.0,
    *,
    report: DecodeReport | None = None,
) -> Iterator[np.ndarray]:
    """Yield mono float32 blocks at ``target_sr`` (the last one may be shorter).

    Memory stays bounded by one block whatever the file's length. With a ``report``,
    a file that is cut short or fails to decode part-way yields what decodes and
    ``report.problem`` says what was wrong (without one, a failed decode raises).
    """
    info = probe(path)
    block_frames = max(1, int(block_seconds * info.samplerate))
    resampler = (
        soxr.ResampleStream(info.samplerate, target_sr, 1, dtype="float32", quality="HQ")
        if info.samplerate != target_sr
        else None
    )
    declared = info.frames if 0 < info.frames < _UNKNOWN_FRAMES else 0
    if report is not None:
        report.declared_seconds = declared / info.samplerate
        report.problem = container_problem(info)
    decoded = 0
    produced = False
    failure: BaseException | None = None

    def emit(block: np.ndarray, last: bool) -> np.ndarray:
        mono = block.mean(axis=1, dtype=np.float32) if block.ndim == 2 else block
        check_finite(mono, info.path.name)
        out = resampler.resample_chunk(mono, last=last) if resampler else mono
        return np.ascontiguousarray(out, dtype=np.float32)

    try:
        with _open(info.path) as handle:
            while True:
                with quiet_native_stderr():
                    block = handle.read(block_frames, dtype="float32", always_2d=True)
                last = len(block) < block_frames
                decoded += len(block)
                out = emit(block, last)
                if out.size:
                    produced = True
                    yield out
                if last:
                    break
    except (sf.LibsndfileError, RuntimeError) as exc:
        if report is None:
            raise AudioError(
                f"{info.path.name}: decoding failed part-way ({_decoder_reason(exc)})"
            ) from exc
        failure = exc
    if failure is not None:
        # Salvage what decodes after the last whole block, in small steps.
        flushed = False
        for block, last in _salvage(info.path, decoded, info.samplerate):
            decoded += len(block)
            flushed = last
            out = emit(block, last)
            if out.size:
                produced = True
                yield out
        if resampler is not None and not flushed:
            out = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            if out.size:
                produced = True
                yield np.ascontiguousarray(out, dtype=np.float32)
    if report is not None:
        got, want = decoded / info.samplerate, declared / info.samplerate
        report.decoded_seconds = got
        if failure is not None:
            of = f" of the {say_seconds(want)} declared" if declared else ""
            report.problem = (
                f"truncated or damaged: decoding stopped after {say_seconds(got)}{of}"
                f" ({_decoder_reason(failure)})"
            )
        elif declared and declared - decoded > length_tolerance(info):
            report.problem = (
                f"truncated: only {say_seconds(got)} of the {say_seconds(want)} its header declares"
                " decode"
            )
        elif report.problem and info.format == "OGG":  # say how much is left
            report.problem = report.problem.replace(
                "the file ends ", f"the file ends after {say_seconds(got)}, ", 1
            )
    if not produced:
        if failure is not None:
            raise AudioError(
                f"{info.path.name}: decoding failed ({_decoder_reason(failure)})"
            ) from failure
        raise AudioError(f"{info.path.name}: decodes to no samples")


#: libsndfile's "length unknown" (a stream it cannot seek) is SF_COUNT_MAX.
_UNKNOWN_FRAMES = 1 << 62
#: Frames per read when salvaging the decodable start of a damaged file.
_SALVAGE_FRAMES = 4096


@contextmanager
def _open(path: Path) -> Iterator[sf.SoundFile]:
    with quiet_native_stderr():
        handle = sf.SoundFile(os.fsencode(path))
    try:
        yield handle
    finally:
        with quiet_native_stderr():
            handle.close()


def _salvage(path: Path, start: int, samplerate: int) -> Iterator[tuple[np.ndarray, bool]]:
    """(block, last) from frame ``start`` on, in small reads, until the decoder gives up."""
    try:
        with _open(path) as handle:
            with quiet_native_stderr():
                try:
                    handle.seek(start)
                    skip = 0
                except (sf.LibsndfileError, RuntimeError):
                    handle.seek(0)
                    skip = start
            while skip > 0:  # the decoder cannot seek: decode up to ``start`` and drop it
                with quiet_native_stderr():
                    dropped = handle.read(min(skip, samplerate * 30), dtype="float32")
                if not len(dropped):
                    return
                skip -= len(dropped)
            while True:
                with quiet_native_stderr():
                    block = handle.read(_SALVAGE_FRAMES, dtype="float32", always_2d=True)
                last = len(block) < _SALVAGE_FRAMES
                yield block, last
                if last:
                    return
    except (sf.LibsndfileError, RuntimeError):
        return


def load(
    path: str | Path, target_sr: int = TARGET_SR, max_seconds: float | None = None
) -> np.ndarray:
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


def _decoder_reason(exc: BaseException) -> str:
    """libsndfile's message, without its misleading "does not exist ... (a pipe?)" guess."""
    text = _short(exc)
    if "does not exist or is not a regular file" in text or "unknown format" in text.lower():
        return "unrecognised or damaged data"
    if text.startswith("Error : "):
        text = text[len("Error : ") :]
    elif text.startswith("Error opening "):
        text = text.split(": ", 1)[-1]
    return text.rstrip(".")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
