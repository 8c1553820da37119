"""``musicbert stats``: readable tables, full JSON, an empty catalog, a bad --db.

The tests of a catalog's contents run on SQLite and on PostgreSQL (``catalog_url``: on
PostgreSQL ``MUSICBERT_DB`` names the server's database, so the commands use it)."""

from __future__ import annotations

import json
import subprocess
import sys

from assistant.cli import main
from catalog.db import open_catalog
from tests.catalog_sample import SAMPLE, fill_sample


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_empty_catalog_says_how_to_add_music(capsys, catalog_url):
    code, out, err = _run(capsys, "stats")
    assert code == 0 and err == ""
    assert "is empty" in out
    assert "musicbert ingest PATH" in out and "musicbert demo" in out


def test_empty_catalog_json(capsys, catalog_url):
    code, out, _ = _run(capsys, "stats", "--json")
    data = json.loads(out)
    assert code == 0 and data["tracks"] == 0 and data["track_list"] == []
    assert "musicbert demo" in data["hint"]


def test_tables_show_counts_durations_and_every_licence(capsys, catalog_url):
    with open_catalog(catalog_url) as catalog:
        fill_sample(catalog)
    code, out, _ = _run(capsys, "stats", "--top", "2")
    assert code == 0
    assert "8 tracks, 5 artists, 6 albums, 7 tag names; total duration 47:13" in out
    assert "By artist (top 2 of 6)" in out
    assert "By album (top 2 of 6)" in out and "By tag (top 2 of 7)" in out
    assert "Ludwig van Beethoven" in out and "18:00" in out
    licences = out.split("Licences and sources")[1].split("Every track")[0]
    assert "public domain" in licences and "rendered with FluidSynth" in licences
    every = out.split("Every track")[1]
    for title, *_ in SAMPLE:
        assert title[:39] in every
    assert "CC BY 3.0" in every and "my recorder" in every


def test_json_has_everything(capsys, catalog_url):
    with open_catalog(catalog_url) as catalog:
        fill_sample(catalog)
    code, out, _ = _run(capsys, "stats", "--json", "--top", "1")
    data = json.loads(out)
    assert code == 0 and data["tracks"] == len(SAMPLE)
    assert len(data["by_artist"]) == 6  # --json is complete whatever --top says
    assert {t["title"] for t in data["track_list"]} == {row[0] for row in SAMPLE}
    assert all({"licence", "source", "attribution"} <= set(t) for t in data["track_list"])


def test_db_option_selects_another_catalog(capsys, tmp_path, catalog_url, monkeypatch):
    monkeypatch.delenv("MUSICBERT_DB", raising=False)  # the default: the SQLite file in the home
    url = catalog_url if catalog_url.startswith("postgresql") else None
    url = url or f"sqlite:///{tmp_path / 'elsewhere.db'}"
    with open_catalog(url) as catalog:
        fill_sample(catalog)
    code, out, _ = _run(capsys, "--db", url, "stats", "--json")
    assert json.loads(out)["tracks"] == len(SAMPLE)
    code, out, _ = _run(capsys, "stats", "--json")  # the default catalog is still empty
    assert json.loads(out)["tracks"] == 0


def test_bad_db_is_one_line_error(capsys):
    code, out, err = _run(capsys, "--db", "nosuchdb://nowhere", "stats")
    assert code == 2 and out == ""
    assert err.startswith("musicbert: cannot use database URL") and err.count("\n") == 1


def test_console_script_runs(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "assistant.cli", "--db", f"sqlite:///{tmp_path / 'c.db'}", "stats"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "is empty" in result.stdout and "Traceback" not in result.stderr


def test_stats_show_integrated_loudness(capsys, catalog_url):
    from catalog.models import AudioFeatures, Track

    with open_catalog(catalog_url) as catalog:
        fill_sample(catalog)
        code, out, _ = _run(capsys, "stats")
        assert "Loudness (LUFS): not measured yet" in out
        with catalog.session() as s:
            tracks = s.query(Track).order_by(Track.id).all()
            for lufs, t in zip((-9.5, -23.0, -14.0), tracks, strict=False):
                t.features = AudioFeatures(loudness_db=lufs - 3, loudness_lufs=lufs)
            loud_title, quiet_title = tracks[0].title, tracks[1].title
    code, out, _ = _run(capsys, "stats")
    assert code == 0
    assert "Loudness (integrated, ITU-R BS.1770): 3 tracks, median -14.0 LUFS" in out
    assert f"quietest {quiet_title[:39]}" in out and f"loudest {loud_title[:39]}" in out
    assert "LUFS" in out.split("Every track")[1]
    code, out, _ = _run(capsys, "stats", "--json")
    data = json.loads(out)
    assert data["loudness"]["loudest"]["lufs"] == -9.5
    assert sorted(t["loudness_lufs"] for t in data["track_list"] if t["loudness_lufs"]) == [
        -23.0,
        -14.0,
        -9.5,
    ]
