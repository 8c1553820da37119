"""Speech in and out: microphone capture, end-pointing, offline recognition, spoken answers.

Capture reads 30 ms blocks from the default input device (sounddevice) and
feeds them at once to the recogniser, so when the end-pointer hears the
speaker stop only the last few blocks remain to decode. The end-pointer is an
energy gate with a noise floor measured from the first frames: no extra
dependency, and it works on files as well as the microphone.

Recognition is pocketsphinx (its English acoustic model is in the wheel) with
a language model of the assistant's own commands and the library's names
(assistant.speech_grammar); a name it garbles inside an otherwise known
phrasing is replaced by the library name that sounds closest
(assistant.speech_match). A short utterance is also decoded with a grammar of
the short slot-free commands ("help", "thank you"), which that model, trained
mostly on long commands with names, hears poorly; the better-scoring words win.
When the domain model finds no words, the utterance is
decoded again with pocketsphinx's open English model, so an out-of-domain
question still yields a transcript.

Answers are spoken by espeak-ng, rendered to samples and played through the
same PortAudio output as the music.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from musicbert.errors import AudioError, DeviceUnavailableError, MusicBertError

RATE = 16_000
FRAME = 480  # 30 ms at 16 kHz
DITHER = 1e-3  # added noise (RMS) so no frame is exact digital silence
PEAK = 0.3  # utterances are levelled to this peak before decoding
# utterances up to this long (end-pointed, pauses included) are also decoded with a grammar
# of the short slot-free commands, and its words win when they score at least as well
SHORT_S = 1.2


class VoiceError(MusicBertError):
    """Speech that could not be turned into a command (nothing heard, only noise)."""


class NoSpeechError(VoiceError):
    """Silence: the end-pointer never heard anyone start speaking."""


class RecordingCancelled(VoiceError):
    """The person pressed Ctrl-C while recording."""


# -- end-pointing -----------------------------------------------------------------------


@dataclass
class EndpointerConfig:
    """Thresholds of the energy gate (dB relative to full scale)."""

    min_level_db: float = -50.0  # never call quieter than this speech
    above_floor_db: float = 12.0  # speech is this far above the measured noise floor
    start_frames: int = 3  # frames above threshold to start (90 ms)
    hangover_s: float = 0.4  # silence that ends an utterance
    pre_roll_s: float = 0.2  # audio kept before the detected start
    max_speech_s: float = 10.0
    no_speech_timeout_s: float = 6.0


@dataclass
class Endpointer:
    """Finds where speech starts and ends in a stream of 30 ms frames."""

    config: EndpointerConfig = field(default_factory=EndpointerConfig)
    frames: int = 0
    floor_db: float | None = None
    start: int | None = None  # frame index where speech began (after pre-roll)
    end: int | None = None  # frame index just after speech ended
    _loud_run: int = 0
    _quiet_run: int = 0
    _last_loud: int = -1

    @property
    def threshold_db(self) -> float:
        floor = self.floor_db if self.floor_db is not None else -90.0
        return max(self.config.min_level_db, floor + self.config.above_floor_db)

    @property
    def in_speech(self) -> bool:
        return self.start is not None and self.end is None

    @property
    def done(self) -> bool:
        return self.end is not None

    @property
    def timed_out(self) -> bool:
        return self.start is None and self.frames * FRAME / RATE >= self.config.no_speech_timeout_s

    def push(self, frame: np.ndarray) -> None:
        """Take one frame (FRAME samples, float32)."""
        self.push_level(_level_db(frame))

    def push_level(self, level: float) -> None:
        """Take one frame given by its level (dBFS), for a caller that has measured it."""
        if self.start is None:
            # the floor follows the quietest recent frames until speech begins
            if self.floor_db is None or level < self.floor_db:
                self.floor_db = level
            else:
                self.floor_db += 0.02 * (level - self.floor_db)
        loud = level > self.threshold_db
        if self.start is None:
            self._loud_run = self._loud_run + 1 if loud else 0
            if self._loud_run >= self.config.start_frames:
                pre = int(self.config.pre_roll_s * RATE / FRAME)
                self.start = max(0, self.frames - self._loud_run + 1 - pre)
        elif self.end is None:
            if loud:
                self._last_loud = self.frames
                self._quiet_run = 0
            else:
                self._quiet_run += 1
            hang = int(self.config.hangover_s * RATE / FRAME)
            too_long = (self.frames - self.start) * FRAME / RATE >= self.config.max_speech_s
            if self._quiet_run >= hang or too_long:
                self.end = self.frames + 1
        if loud and self.start is not None:
            self._last_loud = self.frames
        self.frames += 1

    @property
    def speech_end_frame(self) -> int:
        """The frame after the last loud one: where the speaker actually stopped."""
        return self._last_loud + 1


def _level_db(frame: np.ndarray) -> float:
    """A frame's mean power in dBFS (-120 for digital silence)."""
    return 10 * np.log10(float(np.mean(frame.astype(np.float64) ** 2)) + 1e-12)


NOISY_FLOOR_DB = -45.0  # a steady background this loud is noise, not a quiet room


def _nothing_heard(pointer: Endpointer, advice: str) -> VoiceError:
    if pointer.floor_db is not None and pointer.floor_db > NOISY_FLOOR_DB:
        return VoiceError("heard only steady noise, no speech; try again somewhere quieter")
    return NoSpeechError(f"heard no speech (only silence); {advice}")


def frames_of(samples: np.ndarray) -> Iterable[np.ndarray]:
    for i in range(0, len(samples) - FRAME + 1, FRAME):
        yield samples[i : i + FRAME]


def endpoint(samples: np.ndarray, config: EndpointerConfig | None = None) -> np.ndarray:
    """The speech in a whole recording (16 kHz mono); NoSpeechError when there is none.

    The noise floor starts at the quietest frame of the whole recording: a file
    that begins mid-word (a trimmed clip, synthesised speech) would otherwise
    have its first syllable taken for the floor, and lose its start.
    """
    pointer = Endpointer(config or EndpointerConfig(no_speech_timeout_s=float("inf")))
    levels = [_level_db(frame) for frame in frames_of(samples)]
    if levels:
        pointer.floor_db = min(levels)
    for level in levels:
        pointer.push_level(level)
        if pointer.done:
            break
    if pointer.start is None:
        raise _nothing_heard(pointer, "speak a little louder or closer")
    end = pointer.end if pointer.end is not None else pointer.frames
    return samples[pointer.start * FRAME : end * FRAME]


def looks_like_noise(speech: np.ndarray) -> bool:
    """True for steady broadband noise: speech has a peaky spectrum and a varying level.

    Only the loud frames count, so the silence kept around an utterance does not
    make steady noise look varied.
    """
    if len(speech) < FRAME:
        return True
    frames = np.stack(list(frames_of(speech)))
    levels = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    loud = levels > levels.max() - 30.0
    frames, levels = frames[loud], levels[loud]
    spectra = np.abs(np.fft.rfft(frames * np.hanning(FRAME), axis=1)) ** 2 + 1e-12
    flatness = np.exp(np.mean(np.log(spectra), axis=1)) / np.mean(spectra, axis=1)
    return float(np.median(flatness)) > 0.3 and float(np.std(levels)) < 4.0


# -- recognition ------------------------------------------------------------------------


@dataclass
class Transcript:
    """What was heard, by which model, and how long decoding took after the audio ended."""

    text: str
    model: str  # "domain", "short" (the short-command grammar) or "open"
    decode_s: float
    heard: str = ""  # the decoder's own words, before a misheard name was corrected


class Recognizer:
    """pocketsphinx with the assistant's domain language model and the open model behind it."""

    def __init__(self, catalog_names: dict[str, Iterable[str]] | None = None) -> None:
        from pocketsphinx import Decoder, get_model_path

        from assistant.speech_grammar import (
            build_speech_model,
            dictionary,
            jsgf,
            load_phrasings,
            short_commands,
        )
        from assistant.speech_match import NameMatcher
        from musicbert.paths import cache_dir

        model = Path(get_model_path()) / "en-us"
        dict_path = str(model / "cmudict-en-us.dict")
        words = dictionary(dict_path)
        phrasings = load_phrasings()
        speech = build_speech_model(phrasings, words.get, catalog_names)
        digest = hashlib.sha256(speech.arpa.encode()).hexdigest()[:16]
        arpa = cache_dir("speech") / f"domain-{digest}.arpa"
        if not arpa.exists():
            tmp = arpa.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(speech.arpa, encoding="utf-8")
            tmp.replace(arpa)
        self.speech_model = speech
        self.names = NameMatcher(
            speech.slots, speech.bodies, lambda w: speech.extra_words.get(w) or words.get(w)
        )
        self._decoder = Decoder(
            hmm=str(model / "en-us"), lm=str(arpa), dict=dict_path, loglevel="FATAL"
        )
        extra = list(speech.extra_words.items())
        for i, (word, phones) in enumerate(extra):
            # the search only sees new words once updated: do that with the last one
            self._decoder.add_word(word, phones, i == len(extra) - 1)
        self._decoder.add_lm_file("open", str(model / "en-us.lm.bin"))
        known = lambda w: w in words or w in speech.extra_words  # noqa: E731
        self.short_phrases = short_commands(phrasings, known)
        self._decoder.add_jsgf_string("short", jsgf("short", self.short_phrases))
        self._domain = self._decoder.current_search()
        self._audio: list[np.ndarray] = []

    @classmethod
    def for_catalog(cls, catalog: Any | None) -> Recognizer:
        return cls(catalog_names(catalog) if catalog is not None else None)

    def start(self) -> None:
        self._audio = []

    def feed(self, samples: np.ndarray) -> None:
        self._audio.append(np.asarray(samples, dtype=np.float32))

    def finish(self) -> Transcript:
        """Decode what was fed since ``start``.

        The utterance is decoded whole: pocketsphinx normalises the cepstrum
        per utterance then, which recognised clearly more commands than its
        running estimate when decoding while recording (59% against 45% of
        synthesised commands word for word, at about 0.3 s per command).
        """
        started = time.perf_counter()
        if not self._audio or sum(len(a) for a in self._audio) < FRAME:
            return Transcript("", "domain", 0.0)
        samples = np.concatenate(self._audio)
        pcm = self._pcm(samples)
        heard, score = self._decode(self._domain, pcm)
        text, model = self.names.correct(heard).text, "domain"
        if len(samples) <= SHORT_S * RATE:
            short, short_score = self._decode("short", pcm)
            if heard and short and short_score >= score:
                text = heard = short
                model = "short"
        if not heard:  # nothing the domain model knows: try open English
            model = "open"
            text = heard = self._decode("open", pcm)[0]
        return Transcript(text, model, time.perf_counter() - started, heard)

    def recognize(self, speech: np.ndarray) -> Transcript:
        """Decode one end-pointed utterance (16 kHz mono float32)."""
        self.start()
        self.feed(speech)
        return self.finish()

    def _decode(self, search: str, pcm: bytes) -> tuple[str, float]:
        """What ``search`` hears in ``pcm``, with the decoder's score for it (higher is better)."""
        self._decoder.activate_search(search)
        self._decoder.start_utt()
        self._decoder.process_raw(pcm, False, True)
        self._decoder.end_utt()
        hyp = self._decoder.hyp()
        return (_clean(hyp.hypstr), hyp.score) if hyp else ("", float("-inf"))

    def _pcm(self, samples: np.ndarray) -> bytes:
        """Level to a fixed peak, plus a little noise: pocketsphinx's noise removal
        fails on exact digital silence (the log of zero energy)."""
        peak = float(np.max(np.abs(samples))) if samples.size else 0.0
        x = samples * (PEAK / peak) if peak > 0 else samples
        x = x + DITHER * np.random.default_rng(0).standard_normal(len(x))  # same input, same text
        return (np.clip(x, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def _clean(text: str) -> str:
    words = [w for w in text.split() if not (w.startswith("<") or w.startswith("["))]
    return " ".join(words)


def catalog_names(catalog: Any) -> dict[str, list[str]]:
    """Artist, track, album and tag names from the catalog, by slot."""
    from sqlalchemy import select

    from catalog.models import Album, Artist, Tag, Track

    with catalog.session() as session:
        names = {
            "artist": list(session.scalars(select(Artist.name))),
            "track": list(session.scalars(select(Track.title))),
            "album": list(session.scalars(select(Album.title))),
        }
        for kind in ("genre", "mood", "instrument"):
            names[kind] = list(session.scalars(select(Tag.name).where(Tag.kind == kind).distinct()))
    return names


# -- audio in -----------------------------------------------------------------------------


def read_wav(path: str | Path) -> np.ndarray:
    """A recorded command from a file: mono 16 kHz, at most 30 s; clear errors otherwise."""
    from musicbert.audio_io import load

    audio = load(path, RATE, max_seconds=30)
    if audio.size == 0:
        raise AudioError(f"{Path(path).name}: no samples")
    return audio


@dataclass
class Utterance:
    """End-pointed speech, its transcript, and when the speaker stopped."""

    speech: np.ndarray
    transcript: Transcript
    ended_at: float  # perf_counter time at which end of speech was detected


def speech_from_file(path: str | Path) -> np.ndarray:
    """The end-pointed speech in an audio file; clear errors for bad files, silence, noise."""
    speech = endpoint(read_wav(path))
    if looks_like_noise(speech):
        raise VoiceError("that sounded like noise, not speech; try again somewhere quieter")
    return speech


def transcribe_file(path: str | Path, recognizer: Recognizer) -> Utterance:
    speech = speech_from_file(path)
    ended = time.perf_counter()
    return Utterance(speech, recognizer.recognize(speech), ended)


def listen(
    recognizer: Recognizer,
    device: int | str | None = None,
    config: EndpointerConfig | None = None,
    on_start: Callable[[], None] | None = None,
) -> Utterance:
    """Record one command from the microphone, decoding while the person speaks."""
    from assistant.player import find_device, import_sounddevice

    sd = import_sounddevice()
    find_device("input", device)
    pointer = Endpointer(config or EndpointerConfig())
    frames: list[np.ndarray] = []
    fed: int | None = None  # frames handed to the recogniser so far
    try:
        stream = sd.InputStream(
            device=device, samplerate=RATE, channels=1, dtype="float32", blocksize=FRAME
        )
    except (sd.PortAudioError, ValueError) as exc:
        raise DeviceUnavailableError(f"cannot open the microphone ({exc})") from exc
    try:
        with stream:
            if on_start:
                on_start()
            recognizer.start()
            while not pointer.done:
                block, _overflow = stream.read(FRAME)
                frames.append(block[:, 0].copy())
                pointer.push(frames[-1])
                if pointer.start is not None:
                    fed = pointer.start if fed is None else fed
                    stop = len(frames) if pointer.end is None else min(pointer.end, len(frames))
                    while fed < stop:
                        recognizer.feed(frames[fed])
                        fed += 1
                elif pointer.timed_out:
                    raise _nothing_heard(pointer, "check the microphone and try again")
    except KeyboardInterrupt as exc:
        raise RecordingCancelled("recording cancelled") from exc
    except sd.PortAudioError as exc:
        raise DeviceUnavailableError(f"the microphone stopped working ({exc})") from exc
    ended = time.perf_counter()
    speech = np.concatenate(frames[pointer.start : pointer.end])
    if looks_like_noise(speech):
        raise VoiceError("that sounded like noise, not speech; try again somewhere quieter")
    return Utterance(speech, recognizer.finish(), ended)


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
    """espeak-ng speaking ``text`` into a WAV (test fixtures and the benchmark)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise DeviceUnavailableError("espeak-ng is not installed")
    subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", str(path), text], check=True)
    return path
