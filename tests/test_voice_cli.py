"""``musicbert voice --file WAV --json``: synthesised speech through the real CLI, end to end.

The spoken command is recognised by Whisper with the library's names in its
prompt, handled like typed text, and the JSON is checked against the catalog:
the intent, the artist, the answer and the tracks. Bad input of every kind
gets one line and no traceback.

SQLite only, for CI's time (Whisper decodes every command): after recognition a spoken
turn is the typed one, whose catalog side runs on both backends in test_ask.py and
test_chat.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from assistant.voice import RATE, write_speech
from tests.alsa_harness import no_device_env, run_musicbert
from tests.qa_library import build_library
from tests.real_parts import require_speech

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    require_speech()
    home = tmp_path_factory.mktemp("voice-cli")
    url = f"sqlite:///{home / 'lib.db'}"
    build_library(url)
    env = no_device_env(home / "nohome")
    env["MUSICBERT_DB"] = url
    return env


def _voice(env, tmp_path, text: str, voice: str = "en-us", speed: int = 150) -> dict:
    wav = write_speech(text, tmp_path / "command.wav", voice=voice, speed=speed)
    proc = run_musicbert(["voice", "--file", str(wav), "--json"], env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_spoken_count_by_a_library_artist_is_answered(env, tmp_path):
    # flite: espeak-ng's en-us at 150 wpm is heard "how many tracks i max tech" with this
    # 13-track library's prompt, and no phrasing Whisper finds likely repairs it
    out = _voice(env, tmp_path, "how many tracks by maxstack", voice="flite:rms", speed=175)
    assert out["transcript"] == "how many tracks by maxstack", out["heard"]
    assert out["speech_model"] == "whisper"
    reply = out["reply"]
    assert reply["intent"] == "ask_stats"
    assert any(e["entity"] == "artist" and e["value"] == "Maxstack" for e in reply["entities"])
    assert "3" in reply["text"]  # qa_library holds three Maxstack tracks
    assert out["end_of_speech_to_answer_s"] > 0


def test_spoken_play_request_queues_that_artist(env, tmp_path):
    out = _voice(env, tmp_path, "play something by maxstack", voice="flite:slt", speed=175)
    reply = out["reply"]
    assert reply["intent"] == "play_music", out
    assert reply["tracks"] and all(t["artist"] == "Maxstack" for t in reply["tracks"]), reply


def test_bad_recordings_get_one_line_each(env, tmp_path):
    rng = np.random.default_rng(3)
    cases = {
        "empty.wav": (None, "empty"),
        "corrupt.wav": (b"RIFF\x24\x00\x00\x00WAVEfmt garbage" + bytes(200), ""),
        "silence.wav": (np.zeros(2 * RATE, np.float32), "no speech"),
        "noise.wav": ((0.2 * rng.standard_normal(2 * RATE)).astype(np.float32), "noise"),
        "ten-minutes.wav": (np.zeros(600 * RATE, np.float32), "longer than 30 s"),
    }
    for name, (content, expect) in cases.items():
        path = tmp_path / name
        if content is None:
            path.write_bytes(b"")
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            sf.write(str(path), content, RATE, subtype="PCM_16")
        proc = run_musicbert(["voice", "--file", str(path)], env, timeout=120)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2, (name, proc.stdout, proc.stderr)
        assert len(lines) == 1 and "Traceback" not in proc.stderr, (name, proc.stderr)
        assert expect in lines[0], (name, lines)
