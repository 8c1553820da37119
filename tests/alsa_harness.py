"""A sound card made of files, so PortAudio can be tested for real on a machine with none.

ALSA's ``file`` plugin tees every sample a program plays into a file (here a WAV)
and, for capture, reads what the program records from an ``infile`` (raw
float32). Its slave is the ``null`` device, which neither paces nor makes sound,
so a test plays and records faster than real time.

PortAudio reads the ALSA configuration once, when ``sounddevice`` is imported,
so the configuration must be in the environment before that import: tests run
the code under test in a subprocess with ``env=setup.env()``.

Two facts found while building this (alsa-lib 1.2.8, PortAudio 19.6):
- a single ``file`` PCM used for both directions writes the captured samples
  into the same file as the played ones, so playback and capture are separate
  PCMs joined by ``asym``;
- after the ``infile`` runs out, capture repeats stale samples instead of
  silence, so :func:`write_capture_input` pads the speech with real silence.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

SYSTEM_ALSA_CONF = Path("/usr/share/alsa/alsa.conf")
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class AlsaSetup:
    """Paths of one fake sound card."""

    config: Path
    output_wav: Path  # what was played, as a WAV (header completed when the stream closes)
    capture_input: Path | None  # raw float32 mono at capture_rate that "the microphone" hears
    capture_copy: Path  # the file plugin's copy of what was captured
    output_rate: int
    capture_rate: int

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """The environment for a subprocess that should see this card as its default device."""
        env = dict(os.environ if base is None else base)
        env["ALSA_CONFIG_PATH"] = f"{SYSTEM_ALSA_CONF}:{self.config}"
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        return env

    def played(self) -> tuple[np.ndarray, int]:
        """The samples that arrived at the device (frames, channels) and their rate."""
        data, rate = sf.read(str(self.output_wav), dtype="float32", always_2d=True)
        return data, rate


def write_alsa_config(
    directory: Path,
    *,
    capture_input: Path | None = None,
    output_rate: int = 44_100,
    output_channels: int = 2,
    capture_rate: int = 16_000,
) -> AlsaSetup:
    """Write an ALSA config whose default PCM plays into a WAV and records from ``capture_input``.

    Playback goes through ``plug``, which converts whatever PortAudio sends
    into S16_LE at ``output_rate``. Capture must not: through ``plug`` the
    samples read from the infile arrive out of order (blocks skipped), so the
    capture PCM is the file plugin itself, and the infile holds float32 at the
    rate the program records at (``capture_rate``, 16 kHz for voice).
    """
    directory.mkdir(parents=True, exist_ok=True)
    output_wav = directory / "played.wav"
    capture_copy = directory / "captured.raw"
    infile = f'\n  infile "{capture_input}"' if capture_input is not None else ""
    config = directory / "asound.conf"
    config.write_text(
        f"""pcm.musicbert_out {{
  type file
  slave.pcm "null"
  file "{output_wav}"
  format "wav"
}}
pcm.musicbert_in {{
  type file
  slave.pcm "null"
  file "{capture_copy}"
  format "raw"{infile}
}}
pcm.!default {{
  type asym
  playback.pcm {{
    type plug
    slave {{ pcm "musicbert_out" format S16_LE channels {output_channels} rate {output_rate} }}
  }}
  capture.pcm "musicbert_in"
}}
"""
    )
    return AlsaSetup(config, output_wav, capture_input, capture_copy, output_rate, capture_rate)


def no_device_env(directory: Path) -> dict[str, str]:
    """The environment of a machine with no sound card: ALSA's own config, no ~/.asoundrc.

    (An empty ALSA config is not that: alsa-lib aborts on it.)
    """
    directory.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["ALSA_CONFIG_PATH"] = str(SYSTEM_ALSA_CONF)
    env["HOME"] = str(directory)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def write_capture_input(
    wav: Path | None,
    raw_out: Path,
    *,
    rate: int = 16_000,
    lead_silence: float = 0.3,
    trail_silence: float = 4.0,
    noise: np.ndarray | None = None,
) -> Path:
    """What the microphone will hear: the WAV (any rate) at ``rate``, framed by silence.

    ``wav=None`` gives silence only; ``noise`` (float32 at ``rate``) replaces the
    speech with a noise signal.
    """
    import soxr

    if noise is not None:
        speech = np.asarray(noise, dtype=np.float32)
    elif wav is not None:
        data, sr = sf.read(str(wav), dtype="float32", always_2d=True)
        speech = data.mean(axis=1)
        if sr != rate:
            speech = soxr.resample(speech, sr, rate).astype(np.float32)
    else:
        speech = np.zeros(0, np.float32)
    audio = np.concatenate(
        [
            np.zeros(int(lead_silence * rate), np.float32),
            speech,
            np.zeros(int(trail_silence * rate), np.float32),
        ]
    )
    raw_out.parent.mkdir(parents=True, exist_ok=True)
    np.clip(audio, -1.0, 1.0).astype("<f4").tofile(raw_out)
    return raw_out


def run_python(
    code: str, env: dict[str, str], timeout: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (so sounddevice initialises under ``env``)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=str(cwd or REPO_ROOT),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_musicbert(
    args: list[str], env: dict[str, str], timeout: float = 120, input: str | None = None
) -> subprocess.CompletedProcess:
    """Run the ``musicbert`` CLI in a fresh interpreter under ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "assistant.cli", *args],
        env=env,
        cwd=str(REPO_ROOT),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    """The strongest frequency in a mono signal (Hz)."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        return 0.0
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1.0 / rate)[int(np.argmax(spectrum))])


def rms(samples: np.ndarray) -> float:
    x = np.asarray(samples, dtype=np.float64)
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0
