"""Rendering real music21 corpus scores with the real FluidSynth and a Debian soundfont."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from catalog.analysis import analyse_file
from catalog.render import RenderError, find_soundfont, render_score
from tests.real_parts import needs

pytestmark = needs(shutil.which("fluidsynth") is not None, "fluidsynth is not installed")


def _parse(ref: str):
    from music21 import corpus

    return corpus.parse(ref)


def test_chorale_on_organ(tmp_path):
    out = tmp_path / "chorale.flac"
    info = render_score(_parse("bach/bwv66.6"), out, program=19, tempo_scale=0.75)
    audio, sr = sf.read(out, dtype="float32")
    assert sr == 22050 and audio.ndim == 2
    assert info.seconds == pytest.approx(audio.shape[0] / sr)
    assert 15 < info.seconds < 75
    assert info.qpm == pytest.approx(96 * 0.75)  # the score's own mark, scaled
    assert 20 * np.log10(np.abs(audio).max()) == pytest.approx(-1.0, abs=0.1)
    assert info.key == "F# minor"
    # Our audio key finder hears the rendered chorale in F# minor (or its relative major).
    heard = analyse_file(out)
    assert (heard.key, heard.mode) in {("F#", "minor"), ("A", "major")}


def test_fiddle_tune_with_grace_notes_and_repeats_is_cut_to_length(tmp_path):
    # The fiddle program sustains forever: a stuck grace note once made FluidSynth
    # render without end. The excerpt also cuts the tune's repeats in half.
    out = tmp_path / "reel.flac"
    info = render_score(_parse("ryansMammoth/AcaciaReel"), out, program=110, max_seconds=12)
    assert 5 < info.seconds <= 12.01
    assert sf.info(out).duration == pytest.approx(info.seconds, abs=0.01)


def test_transpose_changes_the_key(tmp_path):
    info = render_score(
        _parse("bach/bwv66.6"), tmp_path / "up.flac", program=0, transpose=2, max_seconds=10
    )
    assert info.key == "G# minor"


def test_empty_score_is_a_clear_error(tmp_path):
    from music21 import stream

    with pytest.raises(RenderError):
        render_score(stream.Score(), tmp_path / "empty.flac", program=0)


def test_soundfont_is_found():
    assert find_soundfont().is_file()
