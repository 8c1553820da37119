"""The library grows behind the chat: a real ingest process, read by another process.

The tests of a catalog run on SQLite and on PostgreSQL (``catalog_url``): a PostgreSQL
catalog's progress file, build log and lock live in ``MUSICBERT_HOME``, keyed by its URL."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from assistant.background import build_running, demo_lock
from assistant.chat import Chat
from assistant.cli import main as cli_main
from catalog.db import open_catalog
from catalog.ingest import interleaved
from catalog.ingest_progress import Growth, IngestProgress, library_growth, track_count
from tests.alsa_harness import REPO_ROOT
from tests.audio_fixtures import write_audio


def test_interleaved_takes_one_file_of_each_folder_in_turn():
    files = ["/m/a/1.flac", "/m/a/2.flac", "/m/a/3.flac", "/m/b/1.flac", "/m/c/2.flac"]
    files += ["/m/c/1.flac"]
    assert interleaved(reversed(files)) == [
        "/m/a/1.flac", "/m/b/1.flac", "/m/c/1.flac", "/m/a/2.flac", "/m/c/2.flac",
        "/m/a/3.flac",
    ]  # fmt: skip


def test_growth_text_and_eta():
    assert Growth(12, 107, "analysing", None).toolbar() == (
        "library: 12 of 107 tracks ready (analysing)"
    )
    assert Growth(3, 0, "scanning", None).ready_text() == "3 tracks ready so far"
    assert Growth(50, 100, "analysing", 400).toolbar().endswith("about 7 min left")
    assert Growth(99, 100, "analysing", 30).eta_text() == "about a minute left"


def test_progress_file_of_this_process_gives_growth_and_eta(catalog_url):
    catalog = open_catalog(catalog_url)
    assert library_growth(catalog) is None  # no ingest runs
    with IngestProgress(catalog) as note:
        note.update(force=True, stage="analysing", expected=40)
        growth = library_growth(catalog)
        assert (growth.ready, growth.expected, growth.stage) == (0, 40, "analysing")
        assert growth.eta_s is None  # nothing committed yet: no rate to go by
        note.update(force=True, committed=1)
        first = note.state["first_commit_at"]
        state_now = first + 100
        # 4 tracks (3 after the first) in 100 s: 36 more take 1200 s
        from catalog.ingest import ingest  # noqa: F401  (the writer's module imports cleanly)

        _add_tracks(catalog, 4)
        growth = library_growth(catalog, now=state_now)
        assert growth.ready == 4 and round(growth.eta_s) == 1200
    assert library_growth(catalog) is None  # the file goes with the ingest
    catalog.close()


def _add_tracks(catalog, n: int) -> None:
    from catalog.models import AudioFeatures, Track

    with catalog.session() as session:  # analysed: ready for an ingest that does not embed
        for i in range(n):
            track = Track(path=f"/nowhere/{i}.flac", title=f"t{i}", content_hash=f"h{i}")
            session.add(track)
            session.flush()
            session.add(AudioFeatures(track_id=track.id))


def test_demo_lock_is_held_by_one_process_at_a_time(catalog_url, capsys):
    catalog = open_catalog(None)  # the one the command opens: MUSICBERT_DB on PostgreSQL
    assert not build_running(catalog)
    with demo_lock(catalog) as mine:
        assert mine
        assert build_running(catalog)
        with demo_lock(catalog) as second:
            assert not second
        assert cli_main(["demo", "--no-embed"]) == 1  # a second build is refused at once
    assert "already running" in capsys.readouterr().err
    assert not build_running(catalog)
    catalog.close()


@pytest.mark.slow
def test_chat_answers_from_the_tracks_ready_while_an_ingest_runs(tmp_path, catalog_url):
    music = tmp_path / "music"
    for i in range(12):
        folder = music / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        write_audio(folder / f"{i:02d}.flac", seconds=30, freq=220 + 20 * i, seed=i)
    url = catalog_url
    catalog = open_catalog(url)  # the schema exists before the ingest process opens it
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    command = [sys.executable, "-m", "assistant.cli", "--db", url, "ingest", "--no-embed"]
    command += ["--workers", "1", "--batch-size", "1", "--json", str(music)]
    proc = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        growth = None
        while time.monotonic() < deadline and proc.poll() is None:
            growth = library_growth(catalog)
            if growth is not None and growth.ready >= 1 and growth.expected:
                break
            time.sleep(0.05)
        assert growth is not None and growth.expected == 12 and 1 <= growth.ready <= 12
        os.kill(proc.pid, signal.SIGSTOP)  # hold the ingest mid-way while the chat talks

        def load():
            from assistant.dialogue import Assistant

            return Assistant.from_defaults(db_url=url, player=None)

        out = io.StringIO()
        with create_pipe_input() as inp:
            chat = Chat(
                load,
                player=None,
                player_problem="no audio output device found",
                out=out,
                session_options={"input": inp, "output": DummyOutput()},
                growth=lambda: library_growth(catalog),
            )
            seen = chat.toolbar()
            inp.send_text("how many tracks are there\r/quit\r")
            assert chat.run() == 0
        text = out.getvalue()
        ready = library_growth(catalog).ready
        assert ready < 12
        assert seen.startswith(f" library: {ready} of 12 tracks ready (")
        # every row is in within a second (the facts come first); "ready" counts the
        # tracks whose last stage (here the analysis: nothing embeds) is in
        assert re.search(r"There are 12 tracks in the library", text), text
        assert f"({ready} of 12 tracks ready; the library is still growing)" in text
        assert f"the library keeps growing in the background: {ready} of 12" in text
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        assert proc.wait(timeout=600) == 0
    assert library_growth(catalog) is None and track_count(catalog) == 12
    chat.out = io.StringIO()
    chat.turn("how many tracks are there")  # the same chat, after the ingest ended
    text = chat.out.getvalue()
    assert "(the library is complete now" in text and "There are 12 tracks" in text, text
    assert "still growing" not in text
    catalog.close()


def test_build_log_and_lock_sit_beside_the_catalog(tmp_path, catalog_url, isolated_home):
    from assistant.background import build_log
    from catalog.ingest_progress import progress_file

    if catalog_url.startswith("sqlite"):
        catalog = open_catalog(f"sqlite:///{tmp_path / 'lib.db'}")
        assert build_log(catalog) == Path(tmp_path / "lib.demo.log")
        catalog.close()
    else:  # a server's catalog: in the home, named by its URL
        with open_catalog(catalog_url) as catalog:
            log, progress = build_log(catalog), progress_file(catalog)
        assert log.parent == progress.parent == isolated_home
        assert log.name.endswith(".demo.log") and progress.name.endswith(".ingest.json")
        assert log.name.removesuffix(".demo.log") == progress.name.removesuffix(".ingest.json")


def test_start_demo_build_runs_detached_at_low_priority_once(catalog_url):
    from assistant.background import BUILD_NICENESS, build_log, start_demo_build
    from catalog.ingest_progress import running_ingest

    url = catalog_url
    catalog = open_catalog(url)
    log = start_demo_build(catalog, url)
    assert log == build_log(catalog)
    state = running_ingest(catalog)  # the build says it runs before the chat goes on, so
    assert state is not None, log.read_text()  # no first answer calls the library empty
    pid = state["pid"]
    try:
        assert os.getsid(pid) == pid  # its own session: the chat's terminal cannot stop it
        assert os.getpriority(os.PRIO_PROCESS, pid) == BUILD_NICENESS
        assert start_demo_build(catalog, url) is None  # one build per catalog
        growth = library_growth(catalog)
        assert growth is not None and growth.ready == 0
    finally:
        os.killpg(pid, signal.SIGKILL)  # the build and any workers it started
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and running_ingest(catalog) is not None:
        time.sleep(0.1)
    assert running_ingest(catalog) is None  # a killed build leaves no live progress behind
    catalog.close()
