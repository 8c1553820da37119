"""The assistant under REAL Rasa Open Source 3.6: validate, train, serve, converse.

A copy of assistant/rasa_project is validated and trained by Rasa 3.6 in its own
Python 3.10 venv (assistant.rasa_env; created on first use, cached outside the repo).
Then ``rasa run --enable-api`` and ``musicbert actions-server`` (rasa_sdk, over a small
real catalog ingested from synthesised, tagged audio) run on loopback, and a
multi-turn conversation goes through Rasa's REST channel; every answer is checked
against the catalog. Both servers are stopped in ``finally``.

The test skips only where no Python 3.10 (or 3.9/3.8) exists to build the venv.
Training uses fewer epochs than config.yml (DIET, TED) so the test fits a small CPU;
the pipeline and policies are the project's own.

SQLite only, for CI's time (Rasa trains a model here): the actions that reach the
catalog run on SQLite and on PostgreSQL in test_rasa_actions.py, in process and as the
real actions server.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from assistant.rasa_env import ensure_env, find_python
from assistant.rasa_server import (
    HttpClient,
    RasaClient,
    ServerProcess,
    free_port,
    serve,
    train,
    validate,
)
from catalog.db import open_catalog
from catalog.ingest import ingest
from catalog.models import Track
from catalog.tags import write_tags
from tests.real_parts import require

pytestmark = [pytest.mark.rasa, pytest.mark.slow]

PROJECT = Path(__file__).resolve().parent.parent / "assistant" / "rasa_project"
MUSICBERT = Path(sys.executable).with_name("musicbert")
#: Epochs for the test's training run (config.yml's are for the real model).
TEST_EPOCHS = {"DIETClassifier": 20, "TEDPolicy": 2}

#: title, artist, album, click tempo (BPM), tone (Hz)
LIBRARY = [
    ("Nebula", "Maxstack", "Endgame: Singularity Original Soundtrack", 96, 330.0),
    ("Awakening", "Maxstack", "Endgame: Singularity Original Soundtrack", 140, 440.0),
    ("Coherence", "Maxstack", "Endgame: Singularity Original Soundtrack", 110, 523.0),
    ("Battle Epic", "Doug Kaufman", "The Battle for Wesnoth OST", 128, 392.0),
]


def click_track(bpm: float, freq: float, seconds: float = 8.0, sr: int = 22050) -> np.ndarray:
    """A pitched tone struck on every beat: analysis finds a tempo and a key in it."""
    t = np.arange(int(seconds * sr)) / sr
    beat = 60.0 / bpm
    envelope = np.exp(-12.0 * (t % beat))
    return (0.4 * np.sin(2 * np.pi * freq * t) * envelope).astype(np.float32)


def build_catalog(music: Path) -> dict[str, dict]:
    """Ingest the LIBRARY as tagged FLAC files into the test's MUSICBERT_HOME catalog."""
    music.mkdir()
    for n, (title, artist, album, bpm, freq) in enumerate(LIBRARY, start=1):
        path = music / f"{n:02d} {title}.flac"
        sf.write(path, click_track(bpm, freq), 22050, format="FLAC")
        write_tags(path, {"title": title, "artist": artist, "album": album, "tracknumber": str(n)})
    catalog = open_catalog()
    summary = ingest(catalog, [music], workers=1, progress=False)
    assert summary.added == len(LIBRARY), summary.skipped
    facts = {}
    with catalog.session() as session:
        for track in session.query(Track).all():
            facts[track.title] = {
                "artist": track.artist.name if track.artist else None,
                "tempo": track.features.tempo if track.features else None,
            }
    catalog.engine.dispose()
    return facts


def project_copy(dest: Path, action_port: int) -> Path:
    """The project's Rasa files with fewer epochs and the action server on action_port."""
    shutil.copytree(PROJECT, dest, ignore=shutil.ignore_patterns("models", ".rasa", "results"))
    config = yaml.safe_load((dest / "config.yml").read_text(encoding="utf-8"))
    for part in config["pipeline"] + config["policies"]:
        if part.get("name") in TEST_EPOCHS:
            part["epochs"] = TEST_EPOCHS[part["name"]]
    (dest / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    endpoints = yaml.safe_load((dest / "endpoints.yml").read_text(encoding="utf-8"))
    endpoints["action_endpoint"] = {"url": f"http://127.0.0.1:{action_port}/webhook"}
    (dest / "endpoints.yml").write_text(yaml.safe_dump(endpoints), encoding="utf-8")
    return dest


def client_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def texts(messages: list[dict]) -> str:
    return " ".join(m.get("text", "") for m in messages)


@pytest.fixture(scope="module")
def rasa_env():
    require(
        find_python() is not None,
        "no Python 3.10 (or 3.9/3.8) on this machine: Rasa 3.6 cannot be installed",
    )
    return ensure_env(quiet=True)  # a failed install is a failure, not a skip


@dataclass
class Stack:
    client: RasaClient
    facts: dict[str, dict]
    rasa_port: int
    home: Path


@pytest.fixture(scope="module")
def stack(rasa_env, tmp_path_factory):
    """Validate + train the project, then Rasa and the action server on loopback."""
    root = tmp_path_factory.mktemp("rasa_stack")
    home, logs = root / "home", root / "logs"
    logs.mkdir()
    with pytest.MonkeyPatch.context() as mp:  # the module's own MUSICBERT_HOME
        mp.setenv("MUSICBERT_HOME", str(home))
        mp.delenv("MUSICBERT_DB", raising=False)
        facts = build_catalog(root / "music")
    action_port, rasa_port = free_port(), free_port()
    project = project_copy(root / "project", action_port)

    validate(rasa_env, project, logs / "validate.log")
    model = train(rasa_env, project, project / "models", logs / "train.log", timeout=3600)

    env = {k: v for k, v in os.environ.items() if k != "MUSICBERT_DB"}
    actions = ServerProcess(
        [str(MUSICBERT), "actions-server", "--port", str(action_port)],
        logs / "actions.log",
        env={**env, "MUSICBERT_HOME": str(home), "PYTHONUNBUFFERED": "1"},
    )
    rasa = serve(
        rasa_env,
        model,
        rasa_port,
        logs / "rasa.log",
        cwd=project,
        endpoints=project / "endpoints.yml",
    )
    health = HttpClient(client_url(action_port))
    client = RasaClient(client_url(rasa_port))
    try:
        actions.start()
        rasa.start()
        actions.wait_until(
            lambda: health.request("GET", "/health")[0] == 200, 600, "musicbert actions-server"
        )
        rasa.wait_until(client.ready, 1200, "rasa run --enable-api")
        yield Stack(client, facts, rasa_port, home)
    finally:
        client.close()
        health.close()
        rasa.stop()
        actions.stop()
    for port in (rasa_port, action_port):  # both servers (and their children) are gone
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_model_parse_intents_and_entities(stack):
    for text, intent in [
        ("hello there", "greet"),
        ("how many tracks by Maxstack?", "ask_stats"),
        ("play Battle Epic", "play_music"),
        ("pause the music", "playback_control"),
    ]:
        parsed = stack.client.parse(text)
        assert parsed["intent"]["name"] == intent, (text, parsed["intent"])
    entities = {e["entity"]: e["value"] for e in stack.client.parse("play Battle Epic")["entities"]}
    assert entities.get("track") == "Battle Epic"


def test_musicbert_nlu_through_rasa(stack):
    """The same server behind `musicbert nlu --nlu rasa --rasa-url`."""
    out = subprocess.run(
        [str(MUSICBERT), "nlu", "--nlu", "rasa", "--rasa-url", client_url(stack.rasa_port)]
        + ["how many tracks by Maxstack?", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MUSICBERT_HOME": str(stack.home)},
    )
    assert out.returncode == 0, out.stderr
    parsed = json.loads(out.stdout.strip().splitlines()[-1])
    assert parsed["intent"] == "ask_stats"
    assert ("artist", "Maxstack") in {(e["entity"], e["value"]) for e in parsed["entities"]}


def test_conversation_through_rest_channel(stack):
    """Greet, count, play, follow up: every answer comes from the catalog."""
    client, facts, sender = stack.client, stack.facts, "listener-1"
    assert texts(client.say(sender, "hi")), "no answer to a greeting"

    count = texts(client.say(sender, "how many tracks by Maxstack?"))
    maxstack = sum(1 for f in facts.values() if f["artist"] == "Maxstack")
    assert f"{maxstack} tracks" in count and "Maxstack" in count, count

    playing = texts(client.say(sender, "play Battle Epic"))
    assert "Battle Epic" in playing, playing

    tempo = facts["Battle Epic"]["tempo"]
    assert tempo is not None, "analysis found no tempo in the click track"
    answer = texts(client.say(sender, "what's its tempo?"))  # "its" = the track playing
    assert str(round(tempo)) in answer, (answer, tempo)


def test_unknown_artist_is_not_counted_as_the_library(stack):
    answer = texts(stack.client.say("listener-2", "how many tracks by Radiohead?"))
    assert answer and f"{len(stack.facts)} tracks in the library" not in answer, answer
