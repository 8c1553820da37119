"""Scores to audio: music21 score -> General MIDI file -> FluidSynth -> FLAC.

Used to build the demo library from music21's bundled corpus. The score is cut to
about ``max_seconds`` at the chosen tempo (whole measures), every part is given the
chosen General MIDI program, FluidSynth renders offline (``-ni -F``, no audio
device), and the result is trimmed, faded, peak-normalised to -1 dBFS and written as
FLAC. The tempo and key actually used are returned so they can be stored as tags.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from musicbert.errors import MusicBertError

SOUNDFONTS = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),  # fluid-soundfont-gm, MIT licence
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),  # timgm6mb-soundfont, GPL-2
)
DEFAULT_QPM = 100.0


class RenderError(MusicBertError):
    """A score that cannot be turned into audio (parse, MIDI or FluidSynth failure)."""


@dataclass
class RenderInfo:
    path: Path
    seconds: float
    qpm: float  # quarter notes per minute actually used
    key: str | None  # e.g. "D minor", from music21's key analysis of the rendered excerpt
    programs: list[int]
    soundfont: Path


def find_soundfont(preferred: str | Path | None = None) -> Path:
    for candidate in ([Path(preferred)] if preferred else []) + list(SOUNDFONTS):
        if candidate.is_file():
            return candidate
    raise RenderError(
        "no General MIDI soundfont found; install fluid-soundfont-gm "
        "(apt-get install fluid-soundfont-gm)"
    )


def _fluidsynth() -> str:
    exe = shutil.which("fluidsynth")
    if not exe:
        raise RenderError("fluidsynth is not installed (apt-get install fluidsynth)")
    return exe


def score_tempo(score) -> float | None:
    """The first metronome mark's quarter-note tempo, if the score has one."""
    from music21 import tempo

    for mark in score.recurse().getElementsByClass(tempo.MetronomeMark):
        try:
            qpm = float(mark.getQuarterBPM())
        except (TypeError, ValueError, AttributeError):
            continue
        if qpm > 0:
            return qpm
    return None


def excerpt(score, max_quarters: float):
    """Whole measures covering the first ``max_quarters`` quarter notes."""
    if score.highestTime <= max_quarters or not score.parts:
        return score
    measures = list(score.parts[0].getElementsByClass("Measure"))
    last = None
    for measure in measures:
        last = measure.number
        if measure.offset + measure.duration.quarterLength >= max_quarters:
            break
    if last is None:
        return score
    first = measures[0].number if measures else 0
    return score.measures(first, last)


def _set_tempo_and_instruments(score, qpm: float, programs: Sequence[int]) -> None:
    from music21 import instrument, tempo

    for mark in list(score.recurse().getElementsByClass(tempo.MetronomeMark)):
        mark.activeSite.remove(mark)
    for tempo_mark in list(score.recurse().getElementsByClass(tempo.TempoIndication)):
        tempo_mark.activeSite.remove(tempo_mark)
    parts = list(score.parts) or [score]
    for index, part in enumerate(parts):
        for old in list(part.recurse().getElementsByClass(instrument.Instrument)):
            old.activeSite.remove(old)
        inst = instrument.Instrument()
        inst.midiProgram = int(programs[index % len(programs)])
        part.insert(0, inst)
    parts[0].insert(0, tempo.MetronomeMark(number=qpm))


def render_score(
    score,
    out_path: str | Path,
    program: int | Sequence[int] = 0,
    tempo_scale: float = 1.0,
    transpose: int = 0,
    soundfont: str | Path | None = None,
    *,
    max_seconds: float = 75.0,
    default_qpm: float = DEFAULT_QPM,
    sample_rate: int = 22050,
) -> RenderInfo:
    """Render ``score`` (a music21 Score, modified in place) to ``out_path`` (.flac or .wav)."""
    out_path = Path(out_path)
    programs = [program] if isinstance(program, int) else list(program) or [0]
    font = find_soundfont(soundfont)
    if hasattr(score, "mergeScores"):  # an ABC file with one tune per voice parses as an Opus
        score = score.mergeScores()
    qpm = (score_tempo(score) or default_qpm) * tempo_scale
    try:
        piece = excerpt(score, max_seconds * qpm / 60.0)
        if transpose:
            piece = piece.transpose(transpose)
        _drop_grace_notes(piece)
        _set_tempo_and_instruments(piece, qpm, programs)
        try:
            found = piece.analyze("key")
            key = f"{found.tonic.name.replace('-', 'b')} {found.mode}"
        except Exception:  # key analysis is a label, not a reason to fail the render
            key = None
        with tempfile.TemporaryDirectory(prefix="musicbert-render-") as tmp:
            midi = Path(tmp) / "score.mid"
            _write_midi(piece, midi)
            audio = _synthesise(midi, font, sample_rate, max_seconds + 5.0)
        sr = sample_rate
    except RenderError:
        raise
    except Exception as exc:  # music21 raises many exception types on odd scores
        raise RenderError(f"cannot render score: {type(exc).__name__}: {str(exc)[:120]}") from exc
    audio = _finish(audio, sr, max_seconds)
    if audio.shape[0] == 0:
        raise RenderError("the score rendered to silence")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    subtype = "PCM_16"
    sf.write(out_path, audio, sr, subtype=subtype)
    return RenderInfo(out_path, audio.shape[0] / sr, qpm, key, programs, font)


def _synthesise(midi: Path, font: Path, sample_rate: int, max_seconds: float) -> np.ndarray:
    """FluidSynth offline render to raw 16-bit stereo, stopped once long enough.

    Raw output has no header to finalise, so stopping FluidSynth early (a stuck note
    on a sustained instrument would otherwise make it render forever) loses nothing.
    """
    raw = midi.with_suffix(".raw")
    command = [_fluidsynth(), "-ni", "-q", "-g", "0.6", "-R", "1", "-C", "0", "-T", "raw"]
    command += ["-O", "s16", "-F", str(raw), "-r", str(sample_rate), str(font), str(midi)]
    enough = int(max_seconds * sample_rate) * 4
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    started = time.monotonic()
    while process.poll() is None:
        if (raw.exists() and raw.stat().st_size >= enough) or time.monotonic() - started > 300:
            process.kill()
            break
        time.sleep(0.05)
    _out, err = process.communicate()
    if not raw.exists() or (process.returncode not in (0, -9) and raw.stat().st_size == 0):
        lines = err.decode(errors="replace").strip().splitlines()
        raise RenderError(f"fluidsynth failed: {lines[-1] if lines else process.returncode}")
    data = np.fromfile(raw, dtype="<i2")
    data = data[: data.size - data.size % 2].reshape(-1, 2)
    return data.astype(np.float32) / 32768.0


def _write_midi(score, path: Path) -> None:
    """MIDI with repeats played out; an excerpt that cut a repeat in half loses its signs."""
    from music21 import bar, repeat, spanner

    try:
        score.write("midi", fp=str(path))
        return
    except repeat.ExpanderException:
        pass
    for measure in score.recurse().getElementsByClass("Measure"):
        for side in ("leftBarline", "rightBarline"):
            if isinstance(getattr(measure, side), bar.Repeat):
                setattr(measure, side, None)
    for mark in list(score.recurse().getElementsByClass(repeat.RepeatExpression)):
        mark.activeSite.remove(mark)
    for bracket in list(score.recurse().getElementsByClass(spanner.RepeatBracket)):
        bracket.activeSite.remove(bracket)
    score.write("midi", fp=str(path))


def _drop_grace_notes(score) -> None:
    """Grace notes become zero-length MIDI notes whose note-off can precede the note-on."""
    for note in list(score.recurse().notes):
        if note.duration.isGrace and note.activeSite is not None:
            note.activeSite.remove(note)


def _finish(audio: np.ndarray, sr: int, max_seconds: float) -> np.ndarray:
    """Trim to ``max_seconds`` (2 s fade-out), drop the silent tail, normalise to -1 dBFS."""
    limit = int(max_seconds * sr)
    if audio.shape[0] > limit:
        audio = audio[:limit].copy()
        fade = min(limit, 2 * sr)
        audio[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)[:, None]
    level = np.abs(audio).max(axis=1)
    loud = np.nonzero(level > 1e-4)[0]
    if loud.size == 0:
        return audio[:0]
    audio = audio[: min(audio.shape[0], loud[-1] + sr // 2)]
    peak = float(np.abs(audio).max())
    return (audio * (10 ** (-1 / 20) / peak)).astype(np.float32)
