"""What an audio file's container declares, and whether the file is cut or mis-declared.

Before any decoding, the first bytes tell whether a file is audio at all, and a WAV's
chunk sizes or an Ogg stream's last pages tell whether it was cut short. These checks
read the container's own structure, byte by byte; they live apart from decoding
(``musicbert.audio_io``) so that each format's rules can be read on their own.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path


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


def say_seconds(value: float) -> str:
    """A length as a person reads it in a problem line ("12.5 s", "0.040 s")."""
    return f"{value:.3f} s" if 0 < value < 0.1 else f"{value:.1f} s"


def looks_like_audio(head: bytes) -> bool:
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
                            f"truncated: the file ends after {say_seconds(available / byte_rate)} "
                            f"of the {say_seconds(chunk_size / byte_rate)} its header declares"
                        )
                    junk = _wav_trailing_junk(handle, start + chunk_size + (chunk_size & 1), size)
                    if junk >= max(65536, byte_rate):
                        return (
                            "mis-declared length: the header declares "
                            f"{say_seconds(chunk_size / byte_rate)} of audio but the file holds "
                            f"about {say_seconds((chunk_size + junk) / byte_rate)} of data"
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


def length_tolerance(info: AudioInfo) -> int:
    """Frames a decode may fall short of the declared length before it counts as cut.

    MP3 lengths are estimates unless a Xing/Info header gives them (VBR files without
    one can be off by a few percent); the other formats declare exact lengths.
    """
    if info.format in ("MP3", "MPEG"):
        return max(info.samplerate, int(0.05 * info.frames))
    return max(int(0.05 * info.samplerate), int(0.002 * info.frames))


__all__ = ["AudioInfo", "container_problem", "length_tolerance", "looks_like_audio", "say_seconds"]
