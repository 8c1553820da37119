"""Faults around the catalog (issue 18): a killed ingest leaves no processes, a home or
index folder that is a file or read-only gives one line (and reading still works),
decoder chatter and long queries stay off the terminal, a damaged index is said once.

Everything here runs the real ``musicbert`` command on real files: processes are
killed with SIGKILL, read-only folders are real read-only mounts, indexes are really
truncated, overwritten or deleted.

The tests that reach the catalog run on SQLite and on PostgreSQL (``catalog_url``), except
those about files only a SQLite catalog has (the FAISS index beside it, a read-only home
holding the database), which say so. PostgreSQL's own faults are real too: a server
whose installation lacks pgvector, a role that may not create the extension, and a
server stopped in the middle of a chat, then started again.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.cli import main
from catalog.db import open_catalog
from tests.audio_fixtures import write_audio

EXE = str(Path(sys.executable).with_name("musicbert"))
ROOT = Path(__file__).resolve().parents[1]


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "MUSICBERT_HOME": str(home), "PYTHONPATH": str(ROOT)}


def _musicbert(home: Path, *argv: str, timeout: float = 300, wrap: list[str] | None = None):
    return subprocess.run(
        [*(wrap or []), EXE, *argv],
        capture_output=True,
        text=True,
        env=_env(home),
        timeout=timeout,
    )


def _one_line_error(done: subprocess.CompletedProcess, *needles: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    for needle in needles:
        assert needle in done.stderr, done.stderr


# ------------------------------------------------------------------ 1. kill -9 of an ingest


def _stat(pid: int) -> list[bytes] | None:
    """Fields of /proc/PID/stat after the command name (state first, ppid second)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return data[data.rindex(b")") + 2 :].split()


def _descendants(root: int) -> dict[int, bytes]:
    """Every live process below ``root`` -> its start time (its identity with the pid)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields and fields[0] != b"Z":
                parents.setdefault(int(fields[1]), []).append(int(entry))
    found: dict[int, bytes] = {}
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            fields = _stat(child)
            if fields and child not in found:
                found[child] = fields[19]
                todo.append(child)
    return found


def _alive(pid: int, identity: bytes) -> bool:
    fields = _stat(pid)
    return bool(fields) and fields[0] not in (b"Z", b"X") and fields[19] == identity


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_an_ingest_leaves_no_worker_processes(tmp_path, catalog_url):
    music = tmp_path / "music"
    music.mkdir()
    for i in range(8):
        write_audio(music / f"track {i}.flac", seconds=25.0, freq=200 + 40 * i, seed=i)
    home = tmp_path / "home"
    argv = [EXE, "ingest", str(music), "--no-embed", "--workers", "2", "--batch-size", "1"]
    log = (tmp_path / "ingest.log").open("wb")  # a pipe nobody reads could block it
    proc = subprocess.Popen(argv, env=_env(home), stdout=log, stderr=log)
    seen: dict[int, bytes] = {}
    try:
        deadline = time.monotonic() + 120
        # the resource tracker, the forkserver and two workers (children of the forkserver)
        while len(seen) < 4:
            assert proc.poll() is None, (tmp_path / "ingest.log").read_text()
            assert time.monotonic() < deadline, f"no workers appeared: {seen}"
            seen.update(_descendants(proc.pid))
            time.sleep(0.05)
        time.sleep(0.5)  # let the workers get into their first files
        seen.update(_descendants(proc.pid))
        os.kill(proc.pid, signal.SIGKILL)  # the parent only; not reaped yet: a zombie
        deadline = time.monotonic() + 5
        while any(_alive(p, i) for p, i in seen.items()) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [p for p, i in seen.items() if _alive(p, i)]
        assert not left, f"{len(left)} of {len(seen)} processes outlived the killed ingest"
    finally:
        proc.kill()
        proc.wait()
        log.close()
        for pid, identity in seen.items():  # what the test started must not outlive it
            if _alive(pid, identity):
                os.kill(pid, signal.SIGKILL)
    # A new ingest over the killed one's catalog runs to the end, unhindered.
    again = _musicbert(home, "ingest", str(music), "--no-embed", "--workers", "2", "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["added"] + summary["unchanged"] == 8 and not summary["skipped"]


# ------------------------------------------------------------------ 3. homes that cannot be used


def test_home_that_is_a_file_is_one_line(tmp_path):
    home = tmp_path / "not-a-folder"
    home.write_text("oops")
    _one_line_error(_musicbert(home, "stats"), "is a file, not a folder", str(home))
    _one_line_error(_musicbert(home / "below", "stats"), "is a file")


@pytest.fixture
def library(catalog_url):
    """The search tests' library in this test's catalog (SQLite or PostgreSQL, which the
    commands use: on PostgreSQL ``MUSICBERT_DB`` names it)."""
    from assistant.model_loader import load_embedder
    from tests.test_search import build_library

    catalog = open_catalog(catalog_url)
    try:
        yield build_library(catalog, load_embedder(None))
    finally:
        catalog.close()


@pytest.fixture
def faiss_library(isolated_home):
    """SQLite only: the library in this test's home with its FAISS index saved beside the
    catalog, the file the index tests damage (a PostgreSQL catalog has no index file: its
    vectors and HNSW index live in the database)."""
    from assistant.model_loader import load_embedder
    from catalog.vector_index import VectorIndex
    from tests.test_search import build_library

    embedder = load_embedder(None)
    catalog = open_catalog()
    try:
        ids = build_library(catalog, embedder)
        index = VectorIndex.open(catalog, str(embedder.model_id), embedder.dim)
        assert index.path is not None and index.path.exists()
        yield ids, index.path
    finally:
        catalog.close()


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_index_folder_that_is_a_file_is_one_line(faiss_library, isolated_home, capsys):
    shutil.rmtree(isolated_home / "index")
    (isolated_home / "index").write_text("not a folder")
    code, out, err = _run(capsys, "search", "calm piano", "-k", "2")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert f"{isolated_home / 'index'} is a file" in err and "move or delete" in err


def test_the_chat_says_why_search_is_unavailable(faiss_library, isolated_home):
    """A part that cannot be built is named with its real cause, not "run reindex"."""
    from assistant.dialogue import Assistant
    from tests.dialogue_library import shared_models

    shutil.rmtree(isolated_home / "index")
    (isolated_home / "index").write_text("not a folder")
    embedder, nlu = shared_models()
    catalog = open_catalog()
    try:
        nlu.refresh_names(catalog)
        assistant = Assistant(catalog, embedder, nlu=nlu)
        assert assistant.search is None
        assert any("is a file" in p for p in assistant.problems)
        assistant.handle("play Rain Piano")
        reply = assistant.handle("more like this")
        assert "is a file" in reply.text and "reindex" not in reply.text
    finally:
        catalog.close()


def _read_only_wrapper(folder: Path) -> list[str] | None:
    """A command prefix that runs a program with ``folder`` really read-only.

    Root ignores permission bits, so as root the folder is bind-mounted read-only in a
    private user and mount namespace (``unshare -rm``); as anyone else, the permission
    bits are taken away for the test. None when neither is possible here.
    """
    if os.geteuid() != 0:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
        return []
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    wrap = [unshare, "-rm", "sh", "-c", script, str(folder)]
    check = 'touch "$1/.probe" 2>/dev/null || echo read-only'
    probe = subprocess.run([*wrap, "sh", "-c", check, "sh", str(folder)], capture_output=True)
    if (folder / ".probe").exists() or probe.stdout.strip() != b"read-only":
        (folder / ".probe").unlink(missing_ok=True)
        return None  # the mount was refused, or did not make the folder read-only
    return wrap


@pytest.mark.slow
def test_read_only_home_reads_and_says_why_it_cannot_write(faiss_library, isolated_home, tmp_path):
    """SQLite only: the catalog file and its index in a read-only home (a PostgreSQL
    catalog is written by its server, whatever the home)."""
    ids, _ = faiss_library
    write_audio(tmp_path / "new.wav", seconds=3.0)
    wrap = _read_only_wrapper(isolated_home)
    if wrap is None:
        pytest.skip("cannot make a folder read-only here (root without unshare)")
    try:
        stats = _musicbert(isolated_home, "stats", "--json", wrap=wrap)
        assert stats.returncode == 0, stats.stderr
        assert json.loads(stats.stdout)["tracks"] == len(ids)

        query = ["search", "slow jazz saxophone", "-k", "2", "--json"]
        found = _musicbert(isolated_home, *query, wrap=wrap)
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)["results"][0]["title"] == "Blue Smoke"

        asked = _musicbert(isolated_home, "ask", "play some jazz", "--json", wrap=wrap)
        assert asked.returncode == 0, asked.stderr
        reply = json.loads(asked.stdout)
        assert reply["tracks"] and "read-only" not in json.dumps(reply)

        refused = _musicbert(isolated_home, "ingest", str(tmp_path / "new.wav"), wrap=wrap)
        _one_line_error(refused, "read-only", str(isolated_home))
    finally:
        if os.geteuid() != 0:
            for path in [isolated_home, *isolated_home.rglob("*")]:
                path.chmod(path.stat().st_mode | 0o200)
    # nothing was written: the catalog is as it was
    conn = sqlite3.connect(isolated_home / "catalog.db")
    try:
        assert conn.execute("SELECT count(*) FROM tracks").fetchone()[0] == len(ids)
        assert conn.execute("SELECT count(*) FROM play_history").fetchone()[0] == 0
    finally:
        conn.close()


# ------------------------------------------------------------------ 4. text that leaks


def _chatty_mp3s(folder: Path) -> None:
    """MP3s that make mpg123 talk: cut in half, and zeros in the middle of the frames."""
    good = write_audio(folder / "good.mp3", seconds=12.0)
    data = good.read_bytes()
    (folder / "half.mp3").write_bytes(data[: len(data) // 2])
    middle = len(data) // 2
    (folder / "holes.mp3").write_bytes(data[:middle] + b"\0" * 4000 + data[middle + 4000 :])
    good.unlink()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_decoder_chatter_stays_off_the_terminal(tmp_path, workers):
    (tmp_path / "music").mkdir()
    _chatty_mp3s(tmp_path / "music")
    done = _musicbert(
        tmp_path / "home", "ingest", str(tmp_path / "music"), "--no-embed", "--workers", workers
    )
    assert done.returncode == 0, done.stderr
    for chatter in ("MPEG", "Xing", "Note:", "Warning:", "resync"):
        assert chatter not in done.stderr, done.stderr
    assert "added 2" in done.stdout


def test_a_huge_query_is_cut_with_one_short_note(library, isolated_home):
    query = "slow jazz saxophone late at night " * 3000  # 102,000 characters
    done = _musicbert(isolated_home, "search", query, "-k", "2", "--json")
    assert done.returncode == 0, done.stderr
    notes = done.stderr.strip().splitlines()
    assert len(notes) == 1 and notes[0].startswith("musicbert: note: the query is long"), notes
    assert "Warning" not in done.stderr and ".py:" not in done.stderr
    assert len(done.stdout) < 5000  # the query is not echoed whole
    data = json.loads(done.stdout)
    assert len(data["query"]) <= 200 and data["query_chars"] == len(query)
    assert data["results"][0]["title"] == "Blue Smoke"


# ------------------------------------------------------------------ 6. damaged search index


@pytest.mark.parametrize(
    "damage, said",
    [
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "damaged"),
        (lambda p: p.write_bytes(os.urandom(p.stat().st_size)), "damaged"),
        (lambda p: (p.unlink(), p.with_suffix(".json").unlink()), "deleted"),
    ],
    ids=["truncated", "garbage", "deleted"],
)
def test_a_repaired_index_is_said_once(faiss_library, capsys, damage, said):
    _, path = faiss_library
    damage(path)
    code, out, err = _run(capsys, "search", "calm piano", "-k", "2")
    assert code == 0 and "Rain Piano" in out
    assert err.strip().splitlines() == [err.strip()], err
    assert err.startswith(f"musicbert: rebuilt the search index: it was {said}"), err
    code, out, err = _run(capsys, "search", "calm piano", "-k", "2")
    assert code == 0 and err == ""  # said once: the rebuilt index was saved


@pytest.mark.slow
def test_ask_says_the_index_was_rebuilt(faiss_library, capsys):
    _, path = faiss_library
    path.write_bytes(path.read_bytes()[:100])
    code, out, err = _run(capsys, "ask", "how many tracks do I have")
    assert code == 0 and out
    assert "rebuilt the search index: it was damaged" in err
    assert len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------ 5. no good match


def test_the_default_model_has_a_calibrated_no_match_threshold():
    from assistant.model_loader import load_embedder
    from catalog.search import NO_MATCH_SIMILARITY

    embedder = load_embedder(None)
    assert not embedder.untrained
    assert embedder.config.text_tower_id in NO_MATCH_SIMILARITY  # rerun benchmarks/no_match.py


@pytest.mark.parametrize("query", ["🦄🦄", "asdkjh qwe", "tax return form"])
def test_nonsense_is_offered_as_the_closest_tracks_only(library, capsys, query):
    code, out, err = _run(capsys, "search", query, "-k", "2")
    assert code == 0 and out.startswith(f"no good match for {query!r}; the closest tracks are:")
    assert len(out.strip().splitlines()) == 5, out  # the note, the table header, 2 tracks
    code, out, err = _run(capsys, "search", query, "-k", "2", "--json")
    data = json.loads(out)
    assert code == 0 and data["good_match"] is False and len(data["results"]) == 2
    assert all(0 < r["similarity"] <= r["score"] + 1e-6 for r in data["results"])


@pytest.mark.parametrize("query", ["calm piano", "metal", "electronic dance music"])
def test_a_sensible_query_is_a_good_match(library, capsys, query):
    code, out, err = _run(capsys, "search", query, "-k", "2")
    assert code == 0 and "no good match" not in out and out.lstrip().startswith("#")
    code, out, err = _run(capsys, "search", query, "-k", "2", "--json")
    assert code == 0 and json.loads(out)["good_match"] is True


def test_the_chat_says_there_is_no_good_match(library, catalog_url):
    from assistant.actions.context import ActionContext
    from assistant.actions.finding import find_music
    from assistant.model_loader import load_embedder
    from assistant.state import DialogueState
    from assistant.turn import Parse
    from catalog.search import SearchEngine

    embedder = load_embedder(None)
    catalog = open_catalog(catalog_url)
    try:
        ctx = ActionContext(catalog, search=SearchEngine(catalog, embedder), embedder=embedder)
        for query, weak in (("the quick brown fox", True), ("calm piano", False)):
            parse = Parse(f"find {query}", "search_music", 1.0)
            reply = find_music(ctx, parse, DialogueState(), "action_search_music", query=query)
            said = reply.text.startswith(f"I found no good match for {query}; the closest tracks")
            assert said is weak and reply.tracks, reply.text
            assert reply.data["good_match"] is (not weak)
    finally:
        catalog.close()


# ------------------------------------------------------------------ 7. search during an ingest


def test_a_search_during_the_first_seconds_of_an_ingest_says_it_is_running(
    tmp_path, isolated_home, capsys, catalog_url
):
    from assistant.model_loader import load_embedder
    from catalog.ingest_progress import progress_file

    load_embedder(None)  # loaded before the ingest starts: the search below is quick
    music = tmp_path / "music"
    music.mkdir()
    for i in range(24):
        write_audio(music / f"track {i}.flac", seconds=60.0, freq=200 + 30 * i, seed=i)
    with open_catalog(catalog_url) as catalog:  # beside a SQLite file; in the home otherwise
        note = progress_file(catalog)
    argv = [EXE, "ingest", str(music), "--no-embed", "--workers", "1", "--batch-size", "1000"]
    log = (tmp_path / "ingest.log").open("wb")
    proc = subprocess.Popen(argv, env=_env(isolated_home), stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 120
        while not (note.exists() and '"analysing"' in note.read_text()):
            assert proc.poll() is None, (tmp_path / "ingest.log").read_text()
            assert time.monotonic() < deadline, "the ingest wrote no progress file"
            time.sleep(0.05)
        # the rows are in (facts first), but no track is searchable yet
        code, out, err = _run(capsys, "search", "calm piano", "-k", "2")
        assert code == 2 and out == "" and "Traceback" not in err, err
        assert "the catalog is empty" not in err, err
        assert f"an ingest is running (pid {proc.pid}" in err and "analysing" in err, err
        assert " of 24 files" in err and "0 tracks ready so far" in err, err
        os.kill(proc.pid, signal.SIGKILL)  # a killed ingest's file is left behind...
        proc.wait()
    finally:
        proc.kill()
        proc.wait()
        log.close()
    assert note.exists()
    code, out, err = _run(capsys, "search", "calm piano", "-k", "2")
    assert code == 2 and "an ingest is running" not in err, err  # ...and recognised as stale
    # the killed ingest wrote its first stage (rows) and nothing a search can use
    assert "none of the 24 tracks has an embedding" in err, err
    # an ingest that ends removes its file
    done = _musicbert(isolated_home, "ingest", str(music), "--no-embed", "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert not note.exists()


# ------------------------------------------------------------------ 8. NLU over a long file


def test_nlu_file_encodes_its_lines_in_batches(tmp_path, monkeypatch, capsys):
    """A file of utterances is one NLU load and a few text-tower batches, not one
    encoding per line; the parses are those of one line at a time."""
    from musicbert.text_tower import TextTower
    from tests.dialogue_library import shared_models

    _, nlu = shared_models()  # also trains (once) the intent model cached in its home
    from tests.dialogue_library import _SHARED

    monkeypatch.setenv("MUSICBERT_HOME", str(_SHARED["home"]))
    moods, things = ("calm", "sad", "epic", "dark", "happy"), ("piano", "jazz", "techno", "strings")
    lines = [f"play {m} {t} number {n}" for n in range(10) for m in moods for t in things]
    lines += ["what key is Nebula in", "skip this one", "🦄🦄", "asdkjh qwe"]
    (tmp_path / "utterances.txt").write_text("\n".join(lines) + "\n\n")
    calls = []
    embed = TextTower.embed

    def counted(self, texts, *args, **kwargs):
        calls.append(len(texts))
        return embed(self, texts, *args, **kwargs)

    monkeypatch.setattr(TextTower, "embed", counted)
    code, out, err = _run(capsys, "nlu", "--file", str(tmp_path / "utterances.txt"), "--json")
    assert code == 0, err
    parsed = [json.loads(line) for line in out.splitlines()]
    assert [p["text"] for p in parsed] == lines
    # each distinct (entity-masked) text once, all in one call per chunk of lines
    assert 20 <= sum(calls) <= len(lines) and len(calls) == 1, calls
    for p in parsed[:: len(lines) // 10]:
        one = nlu.parse(p["text"])
        assert (one.intent, [e.value for e in one.entities]) == (
            p["intent"],
            [e["value"] for e in p["entities"]],
        )


# ------------------------------------------------------------------ 9. PostgreSQL's own faults


@pytest.mark.postgres
def test_a_server_without_pgvector_is_one_line_naming_the_extension(
    pg_server_without_pgvector, capsys
):
    """A real PostgreSQL 16 whose installation has no pgvector (tests/pg_server.py copies
    it without the extension's files): one line naming the extension and how to install
    it, and the database is left as it was (the schema's transaction rolled back)."""
    from musicbert.errors import ConfigError

    server = pg_server_without_pgvector
    name = server.create_database()
    url = server.url(name)
    with pytest.raises(ConfigError) as err:
        open_catalog(url)
    message = str(err.value)
    assert "\n" not in message
    assert "no pgvector extension ('vector')" in message and repr(name) in message
    assert "apt-get install postgresql-16-pgvector" in message
    assert "enable the 'vector' extension" in message  # the managed-database way
    code, out, err_text = _run(capsys, "--db", url, "stats")
    assert code == 2 and out == "" and "Traceback" not in err_text
    assert err_text.strip().splitlines() == [f"musicbert: {message}"]
    import psycopg2

    conn = psycopg2.connect(host=str(server.socket_dir), user="postgres", dbname=name)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            assert cursor.fetchone()[0] == 0
    finally:
        conn.close()


@pytest.mark.postgres
def test_a_role_that_may_not_create_pgvector_is_one_line(pg_server, capsys):
    """A real non-superuser role owning its database, on the server that has pgvector:
    told to ask an administrator for ``CREATE EXTENSION vector``; once that is done the
    same command works."""
    name = pg_server.create_database()
    role = f"plain_{name[-8:]}"
    try:
        pg_server.sql(f"CREATE ROLE {role} LOGIN")
        pg_server.sql(f'ALTER DATABASE "{name}" OWNER TO {role}')
        url = f"postgresql+psycopg2://{role}@/{name}?host={pg_server.socket_dir}"
        code, out, err = _run(capsys, "--db", url, "stats")
        assert code == 2 and out == "" and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err
        assert "pgvector extension ('vector')" in err and "may not create it" in err
        assert f"ask an administrator to run \"CREATE EXTENSION vector;\" in '{name}'" in err
        pg_server.sql("CREATE EXTENSION vector", database=name)  # what the administrator does
        code, out, err = _run(capsys, "--db", url, "stats")
        assert code == 0 and "is empty" in out, err
    finally:
        pg_server.drop_database(name)
        pg_server.sql(f"DROP ROLE IF EXISTS {role}")


@pytest.mark.postgres
def test_a_server_stopped_mid_chat_is_one_line_and_a_restart_recovers(tmp_path, capsys):
    """A server of its own, stopped between turns of a chat (the connections the chat holds
    are cut) and started again: each turn while it is down says, in one line, that the
    connection to the catalog was lost; the command line says so too; once the server is
    back the same chat answers again, without being restarted."""
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from assistant.chat import Chat
    from tests.dialogue_library import make_assistant
    from tests.pg_server import require_server_binaries, start_server, stop_server

    require_server_binaries()
    server = start_server()
    try:
        url = server.url(server.create_database())
        catalog = open_catalog(url)
        bot = make_assistant(catalog)
        out = io.StringIO()
        with create_pipe_input() as inp:
            inp.send_text("play Nebula\r\x04")
            options = {"input": inp, "output": DummyOutput()}
            chat = Chat(lambda: bot, player=None, out=out, session_options=options)
            assert chat.run() == 0
        assert "Nebula" in out.getvalue() and "sorry" not in out.getvalue(), out.getvalue()

        stop_server(server, remove=False)  # fast shutdown: the server ends every session
        for text in ("what key is Nebula in?", "play something calm"):  # cut, then refused
            out.seek(0), out.truncate()
            chat.turn(text)
            said = out.getvalue().strip().splitlines()
            assert len(said) == 1 and said[0].lower().startswith("sorry"), said
            assert "lost the connection to the catalog at postgresql" in said[0]
            assert "is the database server running?" in said[0]
        code, printed, err = _run(capsys, "--db", url, "search", "calm piano")
        assert code == 2 and printed == "" and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1 and "cannot open the catalog" in err, err

        start_server(root=server.root)  # the same data and socket
        out.seek(0), out.truncate()
        chat.turn("what key is Nebula in?")
        assert "E minor" in out.getvalue(), out.getvalue()
        catalog.close()
    finally:
        with contextlib.suppress(RuntimeError):  # already stopped when the test failed
            stop_server(server)
