"""Nothing reaches the network: loading the models, a chat turn, a search, QA and an ingest.

The brief promises a private, offline assistant. Here every way Python opens an
internet connection (TCP/UDP sockets, name lookups) fails loudly while the real
parts run, so a library that quietly "phones home" (a model hub, a telemetry
ping) fails this test instead of hanging on a machine without network.
"""

from __future__ import annotations

import socket

import pytest

from catalog.db import open_catalog
from tests.audio_fixtures import write_audio
from tests.dialogue_library import build_library

_NETWORK = (socket.AF_INET, socket.AF_INET6)


class NetworkUsed(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch):
    """Make every internet connection and name lookup raise; count the attempts."""
    attempts: list[str] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def refuse(what: str):
        attempts.append(what)
        raise NetworkUsed(f"network used during an offline operation: {what}")

    def connect(self, address):
        if self.family in _NETWORK:
            refuse(f"connect {address!r}")
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family in _NETWORK:
            refuse(f"connect_ex {address!r}")
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: refuse(f"getaddrinfo {a[:2]}"))
    monkeypatch.setattr(socket, "gethostbyname", lambda *a: refuse(f"gethostbyname {a}"))
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: refuse(f"create {a[:1]}"))
    return attempts


def test_the_guard_itself_refuses_a_connection(no_network):
    with pytest.raises(NetworkUsed), socket.socket() as sock:
        sock.connect(("127.0.0.1", 9))
    assert no_network


@pytest.fixture(scope="module")
def models_home(tmp_path_factory):
    """One home for both backends' runs: the first trains the intent model, the second
    loads it from there (both offline)."""
    return tmp_path_factory.mktemp("offline_home")


def test_models_chat_search_qa_and_ingest_stay_offline(
    no_network, tmp_path, catalog_url, models_home, monkeypatch
):
    """On SQLite and on PostgreSQL (reached over its Unix socket, which is not the
    network: libpq's own socket, outside Python's ``socket`` module)."""
    monkeypatch.setenv("MUSICBERT_HOME", str(models_home))
    from assistant.dialogue import Assistant, build_qa, build_search
    from assistant.nlu import NLU
    from catalog.ingest import ingest
    from musicbert.embedder import Embedder

    embedder = Embedder.load()  # the packaged checkpoint and the MiniLM tower, from disk
    catalog = open_catalog(catalog_url)
    try:
        build_library(catalog, embedder)
        nlu = NLU.load(catalog=catalog, embedder=embedder)
        assistant = Assistant(
            catalog,
            embedder,
            nlu=nlu,
            qa=build_qa(catalog, embedder, nlu),
            search=build_search(catalog, embedder),
        )
        assert assistant.handle("play something calm with strings").tracks
        assert "Maxstack" in assistant.handle("who made Nebula?").text
        assert assistant.search.search("dark electronic synth", k=2)

        music = tmp_path / "music"
        music.mkdir()
        write_audio(music / "tone.ogg", seconds=3.0, tags={"title": "Offline Tone"})
        summary = ingest(catalog, [music], embedder=embedder, workers=1, progress=False)
        assert summary.added == 1 and summary.embedded == 1
    finally:
        catalog.close()
    assert no_network == []
