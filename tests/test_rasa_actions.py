"""The Rasa bridge: domain actions run through rasa_sdk, in process and as the real
``musicbert actions-server`` answering Rasa's webhook protocol over loopback HTTP; the
actions run on a SQLite and on a PostgreSQL catalog (``catalog_url``)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from assistant.actions import ActionContext
from assistant.nlu.rasa_format import load_domain
from assistant.rasa_actions import Backend, action_classes
from catalog.db import open_catalog
from tests.dialogue_library import build_library, make_assistant, shared_models

ROOT = Path(__file__).resolve().parent.parent


def tracker(text, intent, entities=(), slots=None) -> dict:
    return {
        "sender_id": "listener",
        "slots": slots or {},
        "latest_message": {
            "text": text,
            "intent": {"name": intent, "confidence": 0.9},
            "entities": list(entities),
        },
        "events": [],
        "paused": False,
        "followup_action": None,
        "active_loop": {},
        "latest_action_name": "action_listen",
    }


def slots_after(events, slots=None) -> dict:
    out = dict(slots or {})
    for ev in events:
        if ev.get("event") == "slot":
            out[ev["name"]] = ev["value"]
    return out


def test_actions_in_process_with_rasa_sdk(catalog_url):
    catalog = open_catalog(catalog_url)
    bot = make_assistant(catalog)
    Backend.configure(ctx=bot.ctx)
    try:
        actions = {cls().name(): cls() for cls in action_classes()}
        dispatcher = CollectingDispatcher()
        t = Tracker.from_dict(
            tracker("play Victory", "play_music",
                    [{"entity": "track", "value": "Victory", "start": 5, "end": 12}])
        )  # fmt: skip
        events = actions["action_play_music"].run(dispatcher, t, {})
        assert "2 tracks called" in dispatcher.messages[0]["text"]
        slots = slots_after(events)
        assert slots["pending"]["kind"] == "choose"
        dispatcher = CollectingDispatcher()
        t = Tracker.from_dict(
            tracker("the first one", "select_item",
                    [{"entity": "number", "value": "1", "start": 4, "end": 9}], slots)
        )  # fmt: skip
        events = actions["action_select_item"].run(dispatcher, t, {})
        message = dispatcher.messages[0]
        assert "Timothy Pinkham" in message["text"]
        assert message["custom"]["tracks"][0]["artist"] == "Timothy Pinkham"
        assert slots_after(events, slots)["pending"] is None
        assert set(actions) == set(load_domain().actions)
    finally:
        Backend.configure()
        catalog.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


@pytest.fixture
def actions_server(isolated_home, catalog_url):
    embedder, _ = shared_models()
    catalog = open_catalog(catalog_url)
    build_library(catalog, embedder)
    catalog.close()
    port = free_port()
    env = {**os.environ, "MUSICBERT_HOME": str(isolated_home), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant.cli", "actions-server", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"actions server exited: {proc.stdout.read()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("actions server did not start listening")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_actions_server_answers_rasa_webhook(actions_server):
    url = f"{actions_server}/webhook"
    first = post(url, {
        "next_action": "action_play_music", "sender_id": "listener", "version": "3.6.0",
        "domain": {},
        "tracker": tracker("play Victory", "play_music",
                           [{"entity": "track", "value": "Victory", "start": 5, "end": 12}]),
    })  # fmt: skip
    assert "2 tracks called" in first["responses"][0]["text"]
    slots = slots_after(first["events"])
    second = post(url, {
        "next_action": "action_select_item", "sender_id": "listener", "version": "3.6.0",
        "domain": {},
        "tracker": tracker("the second one", "select_item",
                           [{"entity": "number", "value": "2", "start": 4, "end": 10}], slots),
    })  # fmt: skip
    assert "Ryan Reilly" in second["responses"][0]["text"]
    slots = slots_after(second["events"], slots)
    third = post(url, {
        "next_action": "action_ask_track_info", "sender_id": "listener", "version": "3.6.0",
        "domain": {},
        "tracker": tracker("what's its tempo?", "ask_track_info",
                           [{"entity": "attribute", "value": "tempo", "start": 11, "end": 16}],
                           slots),
    })  # fmt: skip
    assert "110" in third["responses"][0]["text"]
    # an action the domain does not have is refused by rasa_sdk, not crashed on
    req = urllib.request.Request(
        url,
        json.dumps({"next_action": "action_nope", "tracker": tracker("x", "greet")}).encode(),
        {"Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30)
    assert err.value.code == 404


def test_actions_server_refuses_a_busy_port(isolated_home):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "assistant.cli", "actions-server", "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode == 2
    assert "cannot listen" in out.stderr and "Traceback" not in out.stderr


def test_backend_context_is_reused():
    ctx = ActionContext(catalog=None)
    Backend.configure(ctx=ctx)
    try:
        assert Backend.context() is ctx
    finally:
        Backend.configure()
