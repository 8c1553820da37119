"""Decoding audio to the one form every analysis wants: mono float32 at 16 kHz.

soundfile (libsndfile) decodes WAV, FLAC, Ogg Vorbis, Opus and MP3; soxr
resamples. ``stream`` yields fixed-size blocks so that a three-hour file never
sits whole in memory; ``load`` is the convenience for short clips.

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
import struct
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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


# ---------------------------------------------------------------- what a file holds


def _looks_like_audio(head: bytes) -> bool:
    """Whether the first bytes are one of the containers we decode (or an MPEG stream)."""
    if head[:4] in (b"RIFF", b"RIFX", b"RF64", b"BW64") and head[8:12] in (b"WAVE", b"BW64"):
        return True
    if head[:4] in (b"fLaC", b"OggS", b"riff", b"FORM") or head[:3] == b"ID3":
        return True  # (riff: Sony Wave64; FORM: AIFF, which libsndfile reads whatever the name)
    # An MPEG audio frame header somewhere near the start (MP3s may begin with junk).
    for at in range(max(0, len(head) - 3)):
        if head[at] != 0xFF or (head[at + 1] & 0xE0) != 0xE0:
            continue
        b1, b2 = head[at + 1], head[at + 2]
        if (b1 >> 3) & 3 == 1 or (b1 >> 1) & 3 == 0:  # reserved version, reserved layer
            continue
        if (b2 >> 4) in (0, 15) or (b2 >> 2) & 3 == 3:  # free/bad bitrate, reserved rate
            continue
        return True
    return False


def _wav_problem(path: Path, info: AudioInfo) -> str | None:
    """A RIFF/WAVE data chunk that declares more or fewer bytes than the file holds."""
    try:
        with open(os.fsencode(path), "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            head = handle.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None  # RF64, big-endian RIFX...: trust libsndfile
            block_align = 0
            byte_rate = 0
            at = 12
            while at + 8 <= size:
                handle.seek(at)
                chunk_id, chunk_size = struct.unpack("<4sI", handle.read(8))
                if chunk_id == b"fmt ":
                    fmt = handle.read(16)
                    if len(fmt) == 16:
                        _, _, _, byte_rate, block_align, _ = struct.unpack("<HHIIHH", fmt)
                elif chunk_id == b"data":
                    start = at + 8
                    available = size - start
                    if not byte_rate or not block_align:
                        return None
                    if chunk_size > available + block_align:
                        return (
                            f"truncated: the file ends after {_seconds(available / byte_rate)} "
                            f"of the {_seconds(chunk_size / byte_rate)} its header declares"
                        )
                    junk = _wav_trailing_junk(handle, start + chunk_size + (chunk_size & 1), size)
                    if junk >= max(65536, byte_rate):
                        return (
                            "mis-declared length: the header declares "
                            f"{_seconds(chunk_size / byte_rate)} of audio but the file holds "
                            f"about {_seconds((chunk_size + junk) / byte_rate)} of data"
                        )
                    return None
                at += 8 + chunk_size + (chunk_size & 1)
    except (OSError, struct.error):
        return None
    return None


def _wav_trailing_junk(handle, at: int, size: int) -> int:
    """Bytes after the data chunk that are not well-formed chunks (0 when all are)."""
    while at + 8 <= size:
        handle.seek(at)
        chunk_id, chunk_size = struct.unpack("<4sI", handle.read(8))
        plausible = all(32 <= c < 127 for c in chunk_id) and at + 8 + chunk_size <= size + 1
        if not plausible:
            return size - at
        at += 8 + chunk_size + (chunk_size & 1)
    return 0


def _ogg_crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_OGG_CRC = _ogg_crc_table()


def _ogg_page_ok(page: bytes) -> bool:
    """Whether a whole page's CRC (bytes 22-25, computed with them zeroed) matches."""
    crc = 0
    table = _OGG_CRC
    for byte in page[:22] + b"\0\0\0\0" + page[26:]:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ byte]
    return crc == struct.unpack("<I", page[22:26])[0]


def _ogg_problem(path: Path) -> str | None:
    """An Ogg file cut in the middle of a page, or ending without its end-of-stream page.

    From the first page in the file's last 128 KiB whose checksum holds (so a stray
    "OggS" inside packet data cannot mislead), pages are followed to the end of the file.
    """
    try:
        with open(os.fsencode(path), "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - 131072))
            tail = handle.read()
    except OSError:
        return None

    def page_end(at: int) -> int | None:
        header = tail[at : at + 27]
        if len(header) < 27 or header[:4] != b"OggS" or header[4] != 0:
            return None
        lacing = tail[at + 27 : at + 27 + header[26]]
        if len(lacing) < header[26]:
            return len(tail) + 1  # cut inside the header
        return at + 27 + header[26] + sum(lacing)

    at = tail.find(b"OggS")
    while at >= 0:
        end = page_end(at)
        if end is not None and end <= len(tail) and _ogg_page_ok(tail[at:end]):
            break
        at = tail.find(b"OggS", at + 1)
    else:
        return None  # no page we can trust near the end: let the decoder judge
    while True:
        end = page_end(at)
        if end is None:
            return None  # not a page: junk after the stream is not ours to judge
        if end > len(tail):
            return "truncated: the file ends in the middle of an Ogg page"
        if end == len(tail):
            if not tail[at + 5] & 0x04:
                return "truncated: the file ends before the Ogg end-of-stream page"
            return None
        at = end


def container_problem(info: AudioInfo) -> str | None:
    """One line when the container's own structure says the file is cut or mis-declared."""
    if info.format in ("WAV", "WAVEX"):
        return _wav_problem(info.path, info)
    if info.format == "OGG":
        return _ogg_problem(info.path)
    return None


def _length_tolerance(info: AudioInfo) -> int:
    """Frames a decode may fall short of the declared length before it counts as cut.

    MP3 lengths are estimates unless a Xing/Info header gives them (VBR files without
    one can be off by a few percent); the other formats declare exact lengths.
    """
    if info.format in ("MP3", "MPEG"):
        return max(info.samplerate, int(0.05 * info.frames))
    return max(int(0.05 * info.samplerate), int(0.002 * info.frames))


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
    if not _looks_like_audio(head):
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
            of = f" of the {_seconds(want)} declared" if declared else ""
            report.problem = (
                f"truncated or damaged: decoding stopped after {_seconds(got)}{of}"
                f" ({_decoder_reason(failure)})"
            )
        elif declared and declared - decoded > _length_tolerance(info):
            report.problem = (
                f"truncated: only {_seconds(got)} of the {_seconds(want)} its header declares"
                " decode"
            )
        elif report.problem and info.format == "OGG":  # say how much is left
            report.problem = report.problem.replace(
                "the file ends ", f"the file ends after {_seconds(got)}, ", 1
            )
    if not produced:
        if failure is not None:
            raise AudioError(
                f"{info.path.name}: decoding failed ({_decoder_reason(failure)})"
            ) from failure
        raise AudioError(f"{info.path.name}: decodes to no samples")


def _seconds(value: float) -> str:
    return f"{value:.3f} s" if 0 < value < 0.1 else f"{value:.1f} s"


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
