"""Playback of a queue of tracks through the default sound device, in the background.

One thread owns the PortAudio output stream: it decodes the current track in
short blocks (soundfile), resamples them to the device's rate as a stream
(soxr), applies the volume and writes them. So a long track starts at once and
never sits whole in memory, and pause/next/stop take effect within one block
(about 0.1 s). Callers only change shared state under a lock and wake the
thread; they never touch the stream while it plays.

``sounddevice`` is imported when a ``Player`` is made, not at module import,
because importing it initialises PortAudio (slow, and it is where a missing
sound system shows up).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from musicbert.errors import DeviceUnavailableError, MusicBertError

log = logging.getLogger(__name__)

BLOCK_SECONDS = 0.1  # decode/write granularity: how quickly pause/next/stop are heard
RESTART_THRESHOLD = 3.0  # "previous" after this many seconds restarts the current track
VOLUME_STEP = 0.1
DEFAULT_VOLUME = 0.8


class PlayerError(MusicBertError):
    """A playback request that cannot be carried out (empty queue, closed player)."""


@dataclass(frozen=True)
class PlayItem:
    """One queued track: enough to play it and to say what is playing."""

    track_id: int
    path: str | Path
    title: str


@dataclass(frozen=True)
class PlayerStatus:
    """A snapshot for the toolbar and for answers like "what's playing"."""

    state: str  # "stopped" | "playing" | "paused"
    item: PlayItem | None
    elapsed: float  # seconds into the current track
    volume: float  # 0.0 .. 1.0
    position: int = -1  # index of ``item`` in the queue
    queue_length: int = 0
    error: str | None = None  # the last track that could not be played, and why


def import_sounddevice() -> Any:
    """``sounddevice``, or a one-line ``DeviceUnavailableError`` when PortAudio is missing."""
    try:
        import sounddevice
    except OSError as exc:  # the PortAudio shared library is not installed
        raise DeviceUnavailableError(
            f"no sound system: PortAudio could not be loaded ({exc}); "
            "install libportaudio2 to play or record audio"
        ) from exc
    return sounddevice


def find_device(kind: str, device: int | str | None = None) -> dict[str, Any]:
    """The PortAudio device info for ``kind`` ("output" or "input"), or a clear error."""
    sd = import_sounddevice()
    what = "audio output device" if kind == "output" else "microphone (audio input device)"
    try:
        info = sd.query_devices(device, kind=kind)
    except (ValueError, sd.PortAudioError) as exc:
        if device is None:
            raise DeviceUnavailableError(f"no {what} found") from exc
        raise DeviceUnavailableError(f"no {what} {device!r} found ({_short(exc)})") from exc
    channels = info["max_output_channels" if kind == "output" else "max_input_channels"]
    if channels < 1:
        raise DeviceUnavailableError(f"device {info['name']!r} is not an {what}")
    return dict(info)


class Player:
    """A play queue and one background thread that plays it.

    Raises ``DeviceUnavailableError`` when there is no output device, so a
    front-end can say so once and carry on without sound.
    """

    def __init__(self, device: int | str | None = None, samplerate: int | None = None) -> None:
        self._sd = import_sounddevice()
        info = find_device("output", device)
        self.device = device
        self.device_name: str = info["name"]
        self.samplerate = int(samplerate or info.get("default_samplerate") or 44_100)
        self.channels = min(2, int(info["max_output_channels"]))
        self._cond = threading.Condition()
        self._queue: list[PlayItem] = []
        self._index = -1
        self._state = "stopped"
        self._volume = DEFAULT_VOLUME
        self._frames = 0  # frames of the current track written to the device
        self._generation = 0  # bumped by every jump; the thread drops what it was doing
        self._error: str | None = None
        self._closed = False
        self._stream: Any = None
        self._thread: threading.Thread | None = None
        #: Called (outside the player's lock) as ``on_track_end(item, outcome, seconds)``
        #: when a track plays to its end ("completed") or is skipped with next() ("skipped").
        self.on_track_end: Callable[[PlayItem, str, float], None] | None = None

    # -- queue ---------------------------------------------------------------------------

    def enqueue(self, items: list[PlayItem], replace: bool = True) -> PlayerStatus:
        """Put tracks in the queue; ``replace`` drops the old queue and stops playback."""
        with self._cond:
            if replace:
                self._queue = list(items)
                self._index = 0 if self._queue else -1
                self._jump("stopped")
            else:
                self._queue.extend(items)
                if self._index < 0 and self._queue:
                    self._index = 0
            return self._status()

    @property
    def queue(self) -> list[PlayItem]:
        with self._cond:
            return list(self._queue)

    # -- transport -----------------------------------------------------------------------

    def play(self, index: int | None = None) -> PlayerStatus:
        """Start (or resume) playing; ``index`` starts at that queue position."""
        self._ensure_stream()
        with self._cond:
            self._check_open()
            if not self._queue:
                raise PlayerError("the play queue is empty; ask for some music first")
            if index is not None:
                if not 0 <= index < len(self._queue):
                    raise PlayerError(
                        f"no track number {index + 1} in a queue of {len(self._queue)}"
                    )
                self._index = index
                self._jump("playing")
            elif self._state == "paused":
                self._state = "playing"
                self._cond.notify_all()
            elif self._state == "stopped":
                self._index = max(self._index, 0)
                self._jump("playing")
            return self._status()

    def pause(self) -> PlayerStatus:
        with self._cond:
            if self._state == "playing":
                self._state = "paused"
                self._cond.notify_all()
            return self._status()

    def resume(self) -> PlayerStatus:
        with self._cond:
            paused = self._state == "paused"
        return self.play() if paused or self._state == "stopped" else self.status()

    def stop(self) -> PlayerStatus:
        with self._cond:
            self._jump("stopped")
            return self._status()

    def next(self) -> PlayerStatus:
        """Skip to the next track; past the end of the queue playback stops."""
        with self._cond:
            skipped = None
            if self._state in ("playing", "paused") and 0 <= self._index < len(self._queue):
                skipped = (self._queue[self._index], self._frames / self.samplerate)
            if self._index + 1 < len(self._queue):
                self._index += 1
                self._jump("playing")
            else:
                self._jump("stopped")
        if skipped is not None:
            self._track_ended(skipped[0], "skipped", skipped[1])
        if self.status().state == "playing":
            self._ensure_stream()
        return self.status()

    def _track_ended(self, item: PlayItem, outcome: str, seconds: float) -> None:
        callback = self.on_track_end
        if callback is None:
            return
        try:
            callback(item, outcome, round(seconds, 2))
        except Exception as exc:  # a listener's failure must not stop the music
            log.warning("on_track_end failed: %s", exc)

    def previous(self) -> PlayerStatus:
        """Back one track; a few seconds into a track, restart it instead (as players do)."""
        with self._cond:
            if not self._queue:
                raise PlayerError("the play queue is empty; ask for some music first")
            if self._frames / self.samplerate < RESTART_THRESHOLD:
                self._index = max(self._index - 1, 0)
            self._jump("playing")
        self._ensure_stream()
        return self.status()

    # -- volume --------------------------------------------------------------------------

    def set_volume(self, volume: float) -> PlayerStatus:
        if not np.isfinite(volume):
            raise PlayerError(f"volume must be a number between 0 and 1, got {volume!r}")
        with self._cond:
            self._volume = float(min(1.0, max(0.0, volume)))
            return self._status()

    def volume_up(self) -> PlayerStatus:
        return self.set_volume(round(self._volume + VOLUME_STEP, 2))

    def volume_down(self) -> PlayerStatus:
        return self.set_volume(round(self._volume - VOLUME_STEP, 2))

    # -- state ---------------------------------------------------------------------------

    def status(self) -> PlayerStatus:
        with self._cond:
            return self._status()

    def wait_until_stopped(self, timeout: float | None = None) -> bool:
        """Block until the queue has finished (or was stopped); True when it did."""
        with self._cond:
            return self._cond.wait_for(lambda: self._state == "stopped", timeout)

    def close(self) -> None:
        """Stop the thread and release the device (idempotent)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._jump("stopped")
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._stream is not None:
            try:
                self._stream.close()
            except self._sd.PortAudioError:
                pass
            self._stream = None

    def __enter__(self) -> Player:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals (call with the lock held) ---------------------------------------------

    def _status(self) -> PlayerStatus:
        item = self._queue[self._index] if 0 <= self._index < len(self._queue) else None
        return PlayerStatus(
            state=self._state,
            item=None if self._state == "stopped" else item,
            elapsed=self._frames / self.samplerate,
            volume=self._volume,
            position=self._index,
            queue_length=len(self._queue),
            error=self._error,
        )

    def _jump(self, state: str) -> None:
        self._generation += 1
        self._frames = 0
        self._state = state
        self._cond.notify_all()

    def _check_open(self) -> None:
        if self._closed:
            raise PlayerError("the player has been closed")

    def _ensure_stream(self) -> None:
        """Open the output stream and start the thread on first use (errors reach the caller)."""
        with self._cond:
            self._check_open()
            if self._stream is not None:
                return
            try:
                self._stream = self._sd.OutputStream(
                    device=self.device,
                    samplerate=self.samplerate,
                    channels=self.channels,
                    dtype="float32",
                )
            except self._sd.PortAudioError as exc:
                raise DeviceUnavailableError(
                    f"cannot open audio output {self.device_name!r} ({_short(exc)})"
                ) from exc
            self._thread = threading.Thread(target=self._run, name="musicbert-player", daemon=True)
            self._thread.start()

    # -- the playback thread -------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or self._state == "playing")
                if self._closed:
                    return
                generation = self._generation
                item = self._queue[self._index]
            finished = self._play_item(item, generation)
            with self._cond:
                completed = finished and generation == self._generation
                seconds = self._frames / self.samplerate
                if completed:
                    if self._index + 1 < len(self._queue):
                        self._index += 1
                        self._jump("playing")
                    else:
                        self._jump("stopped")
                idle = self._state != "playing"
            if completed:
                self._track_ended(item, "completed", seconds)
            if idle:
                self._stop_stream()

    def _play_item(self, item: PlayItem, generation: int) -> bool:
        """Play one track; True when it ran to its end, False when interrupted."""
        import soundfile as sf
        import soxr

        try:
            handle = sf.SoundFile(str(item.path))
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            return self._skip(item, exc)
        with handle:
            resampler = None
            if handle.samplerate != self.samplerate:
                resampler = soxr.ResampleStream(
                    handle.samplerate, self.samplerate, self.channels, dtype="float32"
                )
            block_frames = max(1, int(BLOCK_SECONDS * handle.samplerate))
            while True:
                with self._cond:
                    pausing = self._state == "paused" and generation == self._generation
                if pausing:
                    self._stop_stream()  # drains what was written; outside the lock
                with self._cond:
                    if self._state == "paused" and generation == self._generation:
                        self._cond.wait_for(
                            lambda: (
                                self._closed
                                or self._state != "paused"
                                or generation != self._generation
                            )
                        )
                    if self._closed or generation != self._generation:
                        return False
                    volume = self._volume
                try:
                    block = handle.read(block_frames, dtype="float32", always_2d=True)
                except (sf.LibsndfileError, RuntimeError) as exc:
                    return self._skip(item, exc)
                last = len(block) < block_frames
                block = self._fit_channels(block)
                out = resampler.resample_chunk(block, last=last) if resampler else block
                if len(out):
                    self._write(np.ascontiguousarray(out * volume, dtype=np.float32))
                    with self._cond:
                        if generation == self._generation:
                            self._frames += len(out)
                if last:
                    return True

    def _fit_channels(self, block: np.ndarray) -> np.ndarray:
        if block.shape[1] == self.channels:
            return block
        if self.channels == 1:
            return block.mean(axis=1, keepdims=True, dtype=np.float32)
        if block.shape[1] == 1:
            return np.repeat(block, self.channels, axis=1)
        return block[:, : self.channels]

    def _write(self, out: np.ndarray) -> None:
        stream = self._stream
        if not stream.active:
            stream.start()
        stream.write(out)  # an underflow after a pause is reported, not raised

    def _stop_stream(self) -> None:
        stream = self._stream
        if stream is not None and stream.active:
            try:
                stream.stop()
            except self._sd.PortAudioError:
                pass

    def _skip(self, item: PlayItem, exc: BaseException) -> bool:
        with self._cond:
            self._error = f"could not play {item.title!r}: {_short(exc)}"
        return True  # treat as finished so the queue moves on


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def try_player(device: int | str | None = None) -> tuple[Player | None, str | None]:
    """A player, or None and the one-line reason there is no sound (front-ends go on typed)."""
    try:
        return Player(device), None
    except DeviceUnavailableError as exc:
        return None, str(exc)
