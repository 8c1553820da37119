"""``musicbert ask``: one scripted turn, as text and as JSON, through the real CLI, on a
SQLite and on a PostgreSQL catalog (``module_catalog_url``). The library is built once
per backend, and one home serves every run, so the intent model is trained once."""

from __future__ import annotations

import json

import pytest

from tests.alsa_harness import no_device_env, run_musicbert
from tests.qa_library import build_library


@pytest.fixture(scope="module")
def ask_home(tmp_path_factory):
    return tmp_path_factory.mktemp("ask")


@pytest.fixture(scope="module")
def env(ask_home, module_catalog_url):
    build_library(module_catalog_url).close()
    env = no_device_env(ask_home / "nohome")
    env["MUSICBERT_HOME"] = str(ask_home / "musicbert")
    env["MUSICBERT_DB"] = module_catalog_url
    return env


@pytest.mark.slow
def test_ask_json_holds_intent_entities_answer_and_tracks(env):
    proc = run_musicbert(["ask", "how many tracks by maxstack", "--json"], env)
    assert proc.returncode == 0, proc.stderr
    reply = json.loads(proc.stdout)
    assert reply["intent"] == "ask_stats"
    assert {"entity": "artist", "value": "Maxstack"}.items() <= reply["entities"][0].items()
    assert "3" in reply["text"]
    assert isinstance(reply["tracks"], list)


@pytest.mark.slow
def test_ask_text_output_shows_a_track_table(env):
    proc = run_musicbert(["ask", "play something by maxstack"], env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.split()[:3] == ["#", "Title", "Artist"] for line in lines), proc.stdout
    assert "Maxstack" in proc.stdout


def test_ask_on_a_missing_database_is_one_clear_line(tmp_path):
    env = no_device_env(tmp_path / "nohome")
    env["MUSICBERT_DB"] = "postgresql://nobody@127.0.0.1:1/none"
    proc = run_musicbert(["ask", "hello"], env)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
