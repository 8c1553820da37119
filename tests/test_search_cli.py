"""``musicbert search`` / ``musicbert similar``: tables, JSON, filters and one-line errors,
on SQLite + FAISS and on PostgreSQL + pgvector (``catalog_url``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.cli import main
from assistant.model_loader import load_embedder
from catalog.db import open_catalog
from tests.test_search import LIBRARY, build_library


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    import faiss
    import torch

    before = torch.get_num_threads(), faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    torch.set_num_threads(before[0])
    faiss.omp_set_num_threads(before[1])


@pytest.fixture
def library(catalog_url):
    """The test library in the catalog the commands use (``MUSICBERT_DB`` on PostgreSQL)."""
    catalog = open_catalog(catalog_url)
    try:
        yield build_library(catalog, load_embedder(None))
    finally:
        catalog.close()


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_search_json_with_filters(library, capsys):
    code, out, _ = run(
        capsys,
        "search",
        "calm solo piano in the rain",
        "-k",
        "5",
        "--tempo",
        "60-90",
        "--year",
        "1990-2000",
        "--key",
        "Gb minor",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert [r["title"] for r in data["results"]] == ["Rain Piano"]
    result = data["results"][0]
    # cosine 1, plus the lexical evidence of the tags the description names
    assert result["track_id"] == library["Rain Piano"] and result["score"] >= 1 - 1e-3
    assert "tempo 72 bpm in 60-90" in result["why"] and "key F# minor" in result["why"]
    assert data["filters"] == "from 1990 to 2000 between 60 and 90 BPM in F# minor"


def test_search_table(library, capsys):
    code, out, _ = run(
        capsys,
        "search",
        "fast electronic synthesizer beat",
        "-k",
        "3",
        "--artist",
        "volt",
        "--tag",
        "electronic",
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["#", "score", "id", "title"]
    assert "Night Drive" in lines[2] and "Volt" in lines[2] and "artist: Volt" in lines[2]
    assert len(lines) == 4  # header, rule, the two Volt tracks tagged electronic


def test_search_diverse_and_duration_and_licence(library, capsys):
    code, out, _ = run(
        capsys,
        "search",
        "music",
        "-k",
        "10",
        "--duration",
        "2:30-5:00",
        "--licence",
        "CC-BY",
        "--diverse",
        "0.3",
        "--json",
    )
    titles = {r["title"] for r in json.loads(out)["results"]}
    assert code == 0 and titles == {"Rain Piano", "Morning Piano", "Old Road"}


def test_similar_by_name_and_id(library, capsys):
    code, out, _ = run(capsys, "similar", "rain piano", "-k", "3", "--json")
    data = json.loads(out)
    assert code == 0 and data["track_id"] == library["Rain Piano"]
    assert len(data["results"]) == 3 and library["Rain Piano"] not in [
        r["track_id"] for r in data["results"]
    ]
    code, out, _ = run(capsys, "similar", str(library["Thunder"]), "-k", "2")
    assert code == 0 and "Thunder" not in out.splitlines()[2]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["search", "piano", "--tempo", "fast"], "cannot read the range 'fast'"),
        (["search", "piano", "--year", "2000-1990"], "goes downwards"),
        (["search", "piano", "--key", "H minor"], "cannot read the key"),
        (["search", "piano", "-k", "0"], "k must be"),
        (["search", "piano", "--artist", "Nobody Known"], "no track matches: by Nobody Known"),
        (["similar", "Thundr Storm"], "did you mean 'Thunder'"),
        (["similar", "424242"], "no track with id 424242"),
    ],
)
def test_bad_input_is_one_line(library, capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_empty_catalog_says_what_to_do(capsys, catalog_url):
    code, _, err = run(capsys, "search", "piano")
    assert code == 2 and "catalog is empty" in err and "musicbert ingest" in err


@pytest.mark.slow
def test_search_in_a_real_process(library, isolated_home):
    """The console entry point in its own process (imports, model load, index from disk)."""
    env = {**os.environ, "MUSICBERT_HOME": str(isolated_home)}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "assistant.cli",
            "search",
            "slow jazz saxophone late at night",
            "-k",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)["results"]
    assert results[0]["title"] == "Blue Smoke" and len(results) == 2
    assert set(LIBRARY) >= {r["title"] for r in results}


@pytest.mark.slow
def test_ingest_command_leaves_the_index_in_step(tmp_path, capsys):
    """SQLite only: the FAISS file beside the catalog (PostgreSQL has none; its vectors are
    kept in step by a trigger, tests/test_pgvector.py)."""
    from catalog.vector_index import VectorIndex
    from tests.audio_fixtures import write_audio

    for i in range(2):
        write_audio(tmp_path / f"a{i}.wav", seconds=3.0, freq=300.0 + 100 * i, seed=i)
    code, _, err = run(capsys, "ingest", str(tmp_path), "--workers", "1", "--json")
    assert code == 0 and "index" in err
    embedder = load_embedder(None)
    catalog = open_catalog()
    try:
        index = VectorIndex.open(catalog, str(embedder.model_id), embedder.dim)
        assert index.message.startswith("loaded") and index.count == 2
    finally:
        catalog.close()
