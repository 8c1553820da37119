"""End-pointing: where speech starts and ends in 30 ms frames, and whether it is only noise.

An energy gate with a noise floor measured from the quietest frames: no model,
no dependency, a decision per frame in microseconds, and the same code for
files and the microphone. ``benchmarks/endpoint.py`` measures it against the
Silero VAD that faster-whisper bundles on the same recordings: in a quiet room
both keep every word and the gate lets decoding start sooner (144 against 192
ms after the speech, median); under a hum or pink noise the gate loses word
ends (54-99 ms on average) and ended 6 of 60 utterances inside a pause, Silero
none; both reject the same noise-only clips. So in a noisy room (a noise floor
above ``NOISY_ROOM_DB``) Silero's speech probability decides what is speech
(``SpeechDetector``, streamed 32 ms at a time), and in a quiet one the gate;
without onnxruntime or the model file the gate decides everywhere.

The gate waits ``hangover_s`` of silence before it calls an utterance over,
but the recogniser does not have to: ``Endpointer.quiet_s`` tells a caller how
long the speaker has been silent, and ``assistant.voice.listen`` starts
decoding after ``early_s`` of it, so the answer does not wait for the hangover.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from musicbert.errors import MusicBertError

RATE = 16_000
FRAME = 480  # 30 ms at 16 kHz
NOISY_FLOOR_DB = -45.0  # a steady background this loud is noise, not a quiet room
NOISY_ROOM_DB = -55.0  # a noise floor above this: Silero VAD decides what is speech, not the gate
SPEECH_PROB = 0.5  # Silero's speech probability that starts an utterance ...
SILENCE_PROB = 0.35  # ... and under which it counts as silence once speech has started


class VoiceError(MusicBertError):
    """Speech that could not be turned into a command (nothing heard, only noise)."""


class NoSpeechError(VoiceError):
    """Silence: the end-pointer never heard anyone start speaking."""


@dataclass
class EndpointerConfig:
    """Thresholds of the energy gate (dB relative to full scale)."""

    min_level_db: float = -50.0  # never call quieter than this speech
    above_floor_db: float = 12.0  # speech is this far above the measured noise floor
    start_frames: int = 3  # frames above threshold to start (90 ms)
    hangover_s: float = 0.4  # silence that ends an utterance
    early_s: float = 0.15  # silence after which decoding may start (speech kept up to here)
    pre_roll_s: float = 0.2  # audio kept before the detected start
    max_speech_s: float = 10.0
    no_speech_timeout_s: float = 6.0


#: Silero VAD v6 as faster-whisper 1.2.1 bundles it (MIT; ``faster_whisper/assets``).
SILERO_SHA256 = "4cbf549b8326f60f80f2536d9eefeb450a9abe83365a098031c89719f1be17d2"


class SpeechDetector:
    """Silero VAD, the ONNX model faster-whisper ships, fed as a stream.

    The model scores 32 ms chunks, each with the 64 samples before it as
    context and the recurrent state the previous chunk left, so a stream gives
    the same probabilities as faster-whisper's call on the whole file. ``push``
    takes 30 ms frames and returns the probability of the latest whole chunk.
    """

    CHUNK = 512
    CONTEXT = 64

    def __init__(self, session: Any) -> None:
        self._session = session
        self._pending = np.zeros(0, np.float32)
        self._context = np.zeros(self.CONTEXT, np.float32)
        self._h = self._c = np.zeros((1, 1, 128), np.float32)
        self.prob = 0.0

    @classmethod
    def load(cls) -> SpeechDetector | None:
        """A detector on the bundled model; None without onnxruntime, or when the model file
        is missing or not the pinned one (the end-pointer then uses its energy gate alone)."""
        global _silero
        if _silero is None:
            try:
                import onnxruntime
                from faster_whisper.utils import get_assets_path

                from musicbert.checksums import verify_sha256

                path = Path(get_assets_path()) / "silero_vad_v6.onnx"
                verify_sha256(path, SILERO_SHA256)
                opts = onnxruntime.SessionOptions()
                opts.inter_op_num_threads = opts.intra_op_num_threads = 1
                opts.log_severity_level = 4
                _silero = onnxruntime.InferenceSession(
                    str(path), providers=["CPUExecutionProvider"], sess_options=opts
                )
            except Exception:  # noqa: BLE001 - no onnxruntime, no model file: the gate alone
                _silero = False
        return cls(_silero) if _silero else None

    def push(self, frame: np.ndarray) -> float:
        self._pending = np.concatenate([self._pending, frame.astype(np.float32)])
        while len(self._pending) >= self.CHUNK:
            chunk, self._pending = self._pending[: self.CHUNK], self._pending[self.CHUNK :]
            batch = np.concatenate([self._context, chunk])[None, :]
            out = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
            self.prob = float(np.asarray(out[0]).reshape(-1)[0])
            self._h, self._c = out[1], out[2]
            self._context = chunk[-self.CONTEXT :]
        return self.prob


_silero: Any = None  # the ONNX session, loaded once (False when it cannot be)


@dataclass
class Endpointer:
    """Finds where speech starts and ends in a stream of 30 ms frames.

    An energy gate over a measured noise floor; in a noisy room (a floor above
    ``NOISY_ROOM_DB``) Silero VAD's speech probability decides instead, when a
    ``detector`` is given: the gate loses word ends under noise, Silero does not
    (benchmarks/endpoint.py), while in a quiet room the gate lets decoding start
    sooner.
    """

    config: EndpointerConfig = field(default_factory=EndpointerConfig)
    detector: SpeechDetector | None = None
    frames: int = 0
    floor_db: float | None = None
    start: int | None = None  # frame index where speech began (after pre-roll)
    end: int | None = None  # frame index just after the hangover ended the utterance
    last_loud: int = -1  # the last frame above threshold
    _loud_run: int = 0
    _quiet_run: int = 0

    @property
    def threshold_db(self) -> float:
        floor = self.floor_db if self.floor_db is not None else -90.0
        return max(self.config.min_level_db, floor + self.config.above_floor_db)

    @property
    def done(self) -> bool:
        return self.end is not None

    @property
    def quiet_s(self) -> float:
        """Seconds of silence since the last loud frame (0 before speech starts)."""
        return self._quiet_run * FRAME / RATE if self.start is not None else 0.0

    @property
    def timed_out(self) -> bool:
        return self.start is None and self.frames * FRAME / RATE >= self.config.no_speech_timeout_s

    @property
    def noisy(self) -> bool:
        return self.floor_db is not None and self.floor_db > NOISY_ROOM_DB

    def push(self, frame: np.ndarray) -> None:
        """Take one frame (FRAME samples, float32)."""
        prob = self.detector.push(frame) if self.detector is not None else None
        self.push_level(level_db(frame), prob)

    def push_level(self, level: float, prob: float | None = None) -> None:
        """Take one frame given by its level (dBFS), for a caller that has measured it, and
        Silero's speech probability where a detector scored it."""
        if self.start is None:
            # the floor follows the quietest recent frames until speech begins
            if self.floor_db is None or level < self.floor_db:
                self.floor_db = level
            else:
                self.floor_db += 0.02 * (level - self.floor_db)
        if prob is not None and self.noisy:
            loud = prob >= (SPEECH_PROB if self.start is None else SILENCE_PROB)
        else:
            loud = level > self.threshold_db
        if self.start is None:
            self._loud_run = self._loud_run + 1 if loud else 0
            if self._loud_run >= self.config.start_frames:
                pre = int(self.config.pre_roll_s * RATE / FRAME)
                self.start = max(0, self.frames - self._loud_run + 1 - pre)
                self.last_loud = self.frames
        elif self.end is None:
            if loud:
                self.last_loud = self.frames
                self._quiet_run = 0
            else:
                self._quiet_run += 1
            hang = int(self.config.hangover_s * RATE / FRAME)
            too_long = (self.frames - self.start) * FRAME / RATE >= self.config.max_speech_s
            if self._quiet_run >= hang or too_long:
                self.end = self.frames + 1
        self.frames += 1

    def speech_stop(self) -> int:
        """The frame where the speech handed to the recogniser stops: ``early_s`` after the
        last loud frame (the silence beyond that only slows decoding)."""
        tail = int(round(self.config.early_s * RATE / FRAME))
        stop = self.last_loud + 1 + tail
        return min(stop, self.end) if self.end is not None else stop


def level_db(frame: np.ndarray) -> float:
    """A frame's mean power in dBFS (-120 for digital silence)."""
    return 10 * np.log10(float(np.mean(frame.astype(np.float64) ** 2)) + 1e-12)


def nothing_heard(pointer: Endpointer, advice: str) -> VoiceError:
    if pointer.floor_db is not None and pointer.floor_db > NOISY_FLOOR_DB:
        return VoiceError("heard only steady noise, no speech; try again somewhere quieter")
    return NoSpeechError(f"heard no speech (only silence); {advice}")


def frames_of(samples: np.ndarray) -> Iterable[np.ndarray]:
    for i in range(0, len(samples) - FRAME + 1, FRAME):
        yield samples[i : i + FRAME]


def endpoint(samples: np.ndarray, config: EndpointerConfig | None = None) -> np.ndarray:
    """The speech in a whole recording (16 kHz mono); NoSpeechError when there is none.

    It runs until ``early_s`` of silence follows speech, exactly what
    ``listen`` hands the recogniser. The noise floor starts at the quietest
    frame of the whole recording: a file that begins mid-word (a trimmed clip,
    synthesised speech) would otherwise have its first syllable taken for the
    floor, and lose its start.
    """
    pointer = Endpointer(config or EndpointerConfig(no_speech_timeout_s=float("inf")))
    levels = [level_db(frame) for frame in frames_of(samples)]
    if levels:
        pointer.floor_db = min(levels)
    detector = SpeechDetector.load() if pointer.noisy else None
    for frame, level in zip(frames_of(samples), levels, strict=True):
        pointer.push_level(level, detector.push(frame) if detector is not None else None)
        if pointer.done:
            break
    if pointer.start is None:
        raise nothing_heard(pointer, "speak a little louder or closer")
    return samples[pointer.start * FRAME : pointer.speech_stop() * FRAME]


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
