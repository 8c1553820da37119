"""The library map on a real catalog (tests/dialogue_library: SQLite and PostgreSQL, vectors
from the real embedder): a real PNG checked for its size and that it is not blank, labelled
clusters, colours by genre / artist / tempo; ``musicbert map --json``; ``/map`` in the chat."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from assistant.chat import Chat
from assistant.cli import main
from catalog.db import open_catalog
from catalog.library_map import MapError, library_map
from tests.dialogue_library import TRACKS, make_assistant


@pytest.fixture
def bot(catalog_url):
    catalog = open_catalog(catalog_url)
    yield make_assistant(catalog)
    catalog.close()


def _check_png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as img:
        w, h = img.size
        assert w >= 600 and h >= 400
        pixels = np.asarray(img.convert("RGB"), dtype=np.int16)
    # not blank: many distinct colours (points, legend, labels), not one background
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20
    assert (np.abs(pixels - 255).sum(axis=2) > 60).mean() > 0.01  # ink covers > 1%


@pytest.mark.parametrize("colour", ["genre", "artist", "tempo"])
def test_the_map_is_a_real_png_with_labelled_clusters(bot, tmp_path, colour):
    m = library_map(
        bot.catalog, bot.embedder.model_id, bot.embedder.dim, tmp_path / "m.png", colour
    )
    _check_png(Path(m.path))
    assert len(m.points) == len(TRACKS) and m.method == "tsne"
    assert m.clusters and all(label for label in m.clusters.values())
    by_title = {p.title: p for p in m.points}
    if colour == "artist":
        assert by_title["Nebula"].colour == "Maxstack"
    elif colour == "genre":
        assert by_title["Nebula"].colour == "electronic"
    else:
        assert by_title["Nebula"].colour == 120.0
    with pytest.raises(MapError):
        library_map(bot.catalog, bot.embedder.model_id, bot.embedder.dim, None, "mood")


def test_pca_and_the_map_command_with_json(bot, tmp_path, capsys):
    out = tmp_path / "pca.png"
    assert main(["map", "--method", "pca", "--color", "artist", "-o", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["method"] == "pca" and doc["tracks"] == len(TRACKS) and doc["file"] == str(out)
    _check_png(out)


def test_map_in_the_chat(bot, tmp_path):
    out = io.StringIO()
    png = tmp_path / "chat-map.png"
    with create_pipe_input() as inp:
        inp.send_text(f"/map tempo {png}\r\x04")
        chat = Chat(
            lambda: bot,
            player=None,
            history_path=tmp_path / "history",
            out=out,
            session_options={"input": inp, "output": DummyOutput()},
        )
        assert chat.run() == 0
    assert f"Saved a map of {len(TRACKS)} tracks to {png}" in out.getvalue()
    _check_png(png)
