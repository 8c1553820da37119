"""The terminal chat, driven like a person would: keystrokes in, text out.

In-process through prompt-toolkit's pipe input (typed lines, Ctrl-C, Ctrl-D,
completion), and end to end as ``musicbert chat`` in a real pseudo-terminal on
a machine with no sound card.
"""

from __future__ import annotations

import io
import os
import pty
import re
import sys
import time
from pathlib import Path

import pytest
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from assistant.chat import Chat, NameCompleter
from assistant.render import track_table
from assistant.turn import TrackRef
from tests.alsa_harness import REPO_ROOT, no_device_env
from tests.qa_library import build_library
from tests.terminal import read_until


def completions(completer: NameCompleter, text: str) -> list[str]:
    return [c.text for c in completer.get_completions(Document(text), None)]


def test_completion_of_commands_and_names():
    completer = NameCompleter()
    completer.set_names(
        {"track": ["The Deep Path", "Nebula"], "artist": ["Maxstack"], "genre": ["electronic"]}
    )
    assert completions(completer, "/v") == ["/voice"]
    assert completions(completer, "/") == ["/help", "/voice", "/map", "/quit"]
    assert completions(completer, "play the deep") == ["The Deep Path"]
    assert completions(completer, "more by max") == ["Maxstack"]
    assert completions(completer, "some elec") == ["electronic"]
    assert completions(completer, "play x") == []


def test_track_table_fits_the_width():
    tracks = [
        TrackRef(1, "A very long title " * 5, "Maxstack", "Endgame", 185.0, 0.9, "tag electronic"),
        TrackRef(2, "Nebula", "Maxstack", None, 3725.0),
    ]
    table = track_table(tracks, width=60)
    lines = table.splitlines()
    assert all(len(line) <= 60 for line in lines)
    assert lines[0].split()[:4] == ["#", "Title", "Artist", "Album"]
    assert "3:05" in lines[2] and "1:02:05" in lines[3] and "…" in lines[2]


@pytest.fixture(scope="module")
def library(module_catalog_url):
    build_library(module_catalog_url).close()
    return module_catalog_url


@pytest.fixture(scope="module")
def assistant(library):
    """One real Assistant for the module (loading MusicBERT and the NLU takes a while)."""
    import assistant.dialogue as dialogue

    return dialogue.Assistant.from_defaults(db_url=library, player=None)


def run_chat(keys: str, assistant, tmp_path: Path) -> tuple[str, Chat]:
    out = io.StringIO()
    with create_pipe_input() as inp:
        inp.send_text(keys)
        chat = Chat(
            lambda: assistant,
            player=None,
            player_problem="no audio output device found",
            names=lambda: {"artist": ["Maxstack"]},
            history_path=tmp_path / "history",
            out=out,
            session_options={"input": inp, "output": DummyOutput()},
        )
        assert chat.run() == 0
    return out.getvalue(), chat


def test_multi_turn_conversation_with_ctrl_c_and_ctrl_d(assistant, tmp_path):
    keys = (
        "how many tracks by maxstack\r"
        "play some half-typed line\x03"  # Ctrl-C drops the line, the chat goes on
        "/help\r"
        "/nonsense\r"
        "what key is nebula in?\r"
        "and what is its tempo?\r"  # a follow-up: "its" is Nebula
        "\x04"  # Ctrl-D leaves
    )
    text, _chat = run_chat(keys, assistant, tmp_path)
    assert "no playback: no audio output device found; the chat goes on typed" in text
    assert "half-typed" not in text
    assert "Commands:" in text and "/voice" in text
    assert "unknown command /nonsense" in text
    assert re.search(r"\b3\b", text), text  # Maxstack has three tracks
    assert re.search(r"F#|F sharp", text), text
    assert "120" in text, text  # Nebula's tempo, from the follow-up
    assert text.rstrip().endswith("bye")
    history = (tmp_path / "history").read_text()
    assert "how many tracks by maxstack" in history and "half-typed" not in history


def test_quit_command_and_toolbar_without_sound(assistant, tmp_path):
    text, chat = run_chat("/quit\r", assistant, tmp_path)
    assert text.rstrip().endswith("bye")
    chat.assistant()  # the background load has finished
    assert "no sound output" in chat.toolbar()


@pytest.mark.slow
def test_musicbert_chat_in_a_real_terminal(library, tmp_path):
    env = no_device_env(tmp_path / "nohome")
    env["MUSICBERT_HOME"] = os.environ["MUSICBERT_HOME"]
    env["MUSICBERT_DB"] = library
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(REPO_ROOT)
        os.execve(sys.executable, [sys.executable, "-m", "assistant.cli", "chat"], env)
    out = bytearray()
    try:
        assert read_until(fd, rb"you>", 60, out), out.decode(errors="replace")
        assert b"no audio output device" in out
        os.write(fd, b"how many tracks by maxstack\r")
        assert read_until(fd, rb"\b3\b(.|\n)*you>", 300, out), out.decode(errors="replace")
        os.write(fd, b"/voice\r")
        assert read_until(fd, rb"no microphone(.|\n)*you>", 60, out), out.decode(errors="replace")
        os.write(fd, b"\x04")
        assert read_until(fd, rb"bye", 30, out)
    finally:
        status = None
        for _ in range(200):  # up to 20 s to exit; then (after a failure) end it
            done, code = os.waitpid(pid, os.WNOHANG)
            if done:
                status = code
                break
            time.sleep(0.1)
        if status is None:
            os.kill(pid, 9)
            _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    assert b"Traceback" not in out
