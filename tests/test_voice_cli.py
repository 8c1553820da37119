"""``musicbert voice --file WAV --json``: espeak-ng speech through the real CLI, end to end.

The spoken command is recognised with the library's names in the speech model,
handled like typed text, and the JSON is checked against the catalog: the
intent, the artist, the answer and the tracks.
"""

from __future__ import annotations

import json
import shutil

import pytest

from assistant.voice import write_speech
from tests.alsa_harness import no_device_env, run_musicbert
from tests.qa_library import build_library

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng"),
]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp("voice-cli")
    url = f"sqlite:///{home / 'lib.db'}"
    build_library(url)
    env = no_device_env(home / "nohome")
    env["MUSICBERT_DB"] = url
    return env


def _voice(env, tmp_path, text: str) -> dict:
    wav = write_speech(text, tmp_path / "command.wav", voice="en-us", speed=150)
    proc = run_musicbert(["voice", "--file", str(wav), "--json"], env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_spoken_count_by_a_library_artist_is_answered(env, tmp_path):
    out = _voice(env, tmp_path, "how many tracks by maxstack")
    assert out["transcript"] == "how many tracks by maxstack", out["heard"]
    assert out["speech_model"] == "domain"
    reply = out["reply"]
    assert reply["intent"] == "ask_stats"
    assert any(e["entity"] == "artist" and e["value"] == "Maxstack" for e in reply["entities"])
    assert "3" in reply["text"]  # qa_library holds three Maxstack tracks
    assert out["end_of_speech_to_answer_s"] > 0


def test_spoken_play_request_queues_that_artist(env, tmp_path):
    out = _voice(env, tmp_path, "play something by maxstack")
    reply = out["reply"]
    assert reply["intent"] == "play_music", out
    assert reply["tracks"] and all(t["artist"] == "Maxstack" for t in reply["tracks"]), reply
