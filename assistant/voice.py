"""Speech in and out: microphone capture, offline recognition, spoken answers.

Capture reads 30 ms blocks from the default input device (sounddevice) into
the end-pointer (assistant.endpoint). Once the speaker has been quiet for
``early_s`` (0.15 s) the speech so far is decoded in a background thread while
the end-pointer keeps listening; when its hangover (0.4 s of silence) confirms
the end, the transcript is usually ready, so the answer does not wait for
the hangover and then for decoding. If the speaker goes on, that guess is
dropped and the whole utterance is decoded. Recognition is Whisper tiny.en
with the library's names (assistant.recognizer).

Answers are spoken by espeak-ng, rendered to samples and played through the
same PortAudio output as the music.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.endpoint import (
    FRAME,
    RATE,
    Endpointer,
    EndpointerConfig,
    NoSpeechError,
    SpeechDetector,
    VoiceError,
    endpoint,
    looks_like_noise,
    nothing_heard,
)
from assistant.recognizer import Recognizer, Transcript
from musicbert.errors import AudioError, DeviceUnavailableError

__all__ = [
    "FRAME",
    "RATE",
    "EndpointerConfig",
    "NoSpeechError",
    "Recognizer",
    "RecordingCancelled",
    "Transcript",
    "VoiceError",
    "endpoint",
    "listen",
    "looks_like_noise",
    "read_wav",
    "speech_from_file",
]


class RecordingCancelled(VoiceError):
    """The person pressed Ctrl-C while recording."""


def catalog_names(catalog: Any) -> dict[str, list[str]]:
    """Artist, track, album and tag names from the catalog, by slot; artists and albums with
    the most tracks first (the recogniser's prompt takes the first that fit)."""
    from sqlalchemy import func, select

    from catalog.models import Album, Artist, Tag, Track

    with catalog.session() as session:
        artists = select(Artist.name).outerjoin(Track, Track.artist_id == Artist.id)
        albums = select(Album.title).outerjoin(Track, Track.album_id == Album.id)
        names = {
            "artist": list(
                session.scalars(
                    artists.group_by(Artist.id).order_by(func.count(Track.id).desc(), Artist.name)
                )
            ),
            "track": list(session.scalars(select(Track.title).order_by(Track.id))),
            "album": list(
                session.scalars(
                    albums.group_by(Album.id).order_by(func.count(Track.id).desc(), Album.title)
                )
            ),
        }
        for kind in ("genre", "mood", "instrument"):
            names[kind] = list(session.scalars(select(Tag.name).where(Tag.kind == kind).distinct()))
    return names


# -- audio in -----------------------------------------------------------------------------


MAX_FILE_S = 30.0  # a spoken command is a few seconds; longer files are refused


def read_wav(path: str | Path) -> np.ndarray:
    """A recorded command from a file: mono 16 kHz, at most 30 s; clear errors otherwise."""
    from musicbert.audio_io import load

    audio = load(path, RATE, max_seconds=MAX_FILE_S + 1)
    if audio.size == 0:
        raise AudioError(f"{Path(path).name}: no samples")
    if audio.size > MAX_FILE_S * RATE:
        raise VoiceError(
            f"{Path(path).name} is longer than {MAX_FILE_S:.0f} s; "
            "a spoken command is a few seconds, record just the command"
        )
    return audio


@dataclass
class Utterance:
    """End-pointed speech, its transcript, and when the speaker stopped."""

    speech: np.ndarray
    transcript: Transcript
    ended_at: float  # perf_counter time at which the speaker stopped


def speech_from_file(path: str | Path) -> np.ndarray:
    """The end-pointed speech in an audio file; clear errors for bad files, silence, noise."""
    speech = endpoint(read_wav(path))
    if looks_like_noise(speech):
        raise VoiceError("that sounded like noise, not speech; try again somewhere quieter")
    return speech


def listen(
    recognizer: Recognizer,
    device: int | str | None = None,
    config: EndpointerConfig | None = None,
    on_start: Callable[[], None] | None = None,
) -> Utterance:
    """Record one command from the microphone, decoding as soon as the speaker pauses."""
    from assistant.player import find_device, import_sounddevice

    sd = import_sounddevice()
    find_device("input", device)
    pointer = Endpointer(config or EndpointerConfig(), detector=SpeechDetector.load())
    frames: list[np.ndarray] = []
    guess: tuple[int, Future] | None = None  # (stop frame, decoding of frames up to it)
    try:
        stream = sd.InputStream(
            device=device, samplerate=RATE, channels=1, dtype="float32", blocksize=FRAME
        )
    except (sd.PortAudioError, ValueError) as exc:
        raise DeviceUnavailableError(f"cannot open the microphone ({exc})") from exc
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode") as pool:
        try:
            with stream:
                if on_start:
                    on_start()
                while not pointer.done:
                    block, _overflow = stream.read(FRAME)
                    frames.append(block[:, 0].copy())
                    pointer.push(frames[-1])
                    if pointer.start is None:
                        if pointer.timed_out:
                            raise nothing_heard(pointer, "check the microphone and try again")
                        continue
                    stop = pointer.speech_stop()
                    if guess is not None and guess[0] != stop:
                        guess = None  # the speaker went on: that decoding is stale
                    if guess is None and pointer.quiet_s >= pointer.config.early_s:
                        speech = np.concatenate(frames[pointer.start : stop])
                        guess = (stop, pool.submit(recognizer.recognize, speech))
        except KeyboardInterrupt as exc:
            raise RecordingCancelled("recording cancelled") from exc
        except sd.PortAudioError as exc:
            raise DeviceUnavailableError(f"the microphone stopped working ({exc})") from exc
        # the speaker stopped after the last loud frame, a hangover ago
        ended = time.perf_counter() - (pointer.frames - 1 - pointer.last_loud) * FRAME / RATE
        stop = pointer.speech_stop()
        speech = np.concatenate(frames[pointer.start : stop])
        if looks_like_noise(speech):
            raise VoiceError("that sounded like noise, not speech; try again somewhere quieter")
        if guess is not None and guess[0] == stop:
            transcript = guess[1].result()
        else:
            transcript = recognizer.recognize(speech)
    return Utterance(speech, transcript, ended)


# -- audio out ----------------------------------------------------------------------------


def synthesize(text: str, voice: str = "en-us", speed: int = 175) -> tuple[np.ndarray, int]:
    """espeak-ng's rendering of ``text`` as float32 samples and their rate."""
    import io

    import soundfile as sf

    exe = shutil.which("espeak-ng")
    if exe is None:
        raise DeviceUnavailableError("espeak-ng is not installed; answers cannot be spoken")
    proc = subprocess.run(
        [exe, "-v", voice, "-s", str(speed), "--stdout", text],
        capture_output=True,
        timeout=60,
    )
    if proc.returncode != 0 or not proc.stdout:
        raise VoiceError(f"espeak-ng failed: {proc.stderr.decode(errors='replace').strip()[:160]}")
    data, rate = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    return data, rate


def speak(text: str, voice: str = "en-us", speed: int = 175, device: int | str | None = None):
    """Say ``text`` through the default output device (blocks until it has been played)."""
    from assistant.player import find_device, import_sounddevice

    sd = import_sounddevice()
    info = find_device("output", device)
    samples, rate = synthesize(text, voice, speed)
    out_rate = int(info.get("default_samplerate") or rate)
    if out_rate != rate:
        import soxr

        samples = soxr.resample(samples, rate, out_rate).astype(np.float32)
    try:
        sd.play(samples, out_rate, device=device, blocking=True)
    except sd.PortAudioError as exc:
        raise DeviceUnavailableError(f"cannot play the spoken answer ({exc})") from exc


def write_speech(text: str, path: Path, voice: str = "en-us", speed: int = 175) -> Path:
    """Synthesised speech of ``text`` in a WAV (test fixtures and the benchmark).

    ``voice`` is an espeak-ng voice ("en-us", "en+f3"), "flite:NAME" for one of flite's
    voices ("flite:slt"), or "festival:NAME" for one of Festival's ("festival:kal_diphone",
    with ``text2wave``); ``speed`` is in words per minute (175 is flite's and Festival's own).
    """
    engine, _, name = voice.rpartition(":")
    program = {"flite": "flite", "festival": "text2wave"}.get(engine, "espeak-ng")
    exe = shutil.which(program)
    if exe is None:
        raise DeviceUnavailableError(f"{program} is not installed")
    stdin = None
    if engine == "flite":
        stretch = f"duration_stretch={175 / speed:.3f}"
        command = [exe, "-voice", name, "--setf", stretch, "-t", text, "-o", str(path)]
    elif engine == "festival":
        setup = f"(voice_{name}) (Parameter.set 'Duration_Stretch {175 / speed:.3f})"
        command, stdin = [exe, "-eval", setup, "-o", str(path)], text.encode()
    else:
        command = [exe, "-v", voice, "-s", str(speed), "-w", str(path), text]
    subprocess.run(command, input=stdin, check=True, capture_output=True, timeout=60)
    return path
