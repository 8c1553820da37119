"""Ingestion end to end on real files, real worker processes and a real catalog: SQLite
and PostgreSQL (``catalog_url``; ``other_url`` is a second catalog on the same backend)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from assistant.cli import main as cli_main
from catalog.db import open_catalog
from catalog.ingest import db_path, fs_path, ingest, reindex, select_model_tags
from catalog.models import AudioFeatures, Embedding, Tag, Track
from tests.audio_fixtures import write_audio
from tests.catalogs import backend_catalog, fresh_database

catalog = pytest.fixture(name="catalog")(backend_catalog)


@pytest.fixture
def other_url(catalog_url, tmp_path, request):
    """A second, empty catalog on the backend of ``catalog_url``."""
    backend = "sqlite" if catalog_url.startswith("sqlite") else "postgres"
    with fresh_database(backend, tmp_path / "other.db", request) as url:
        yield url


@pytest.fixture
def library(tmp_path) -> Path:
    root = tmp_path / "music"
    (root / "album").mkdir(parents=True)
    write_audio(
        root / "album" / "01 first.flac",
        freq=440,
        tags={
            "title": "First Light",
            "artist": "The Testers",
            "album": "Synthetic",
            "date": "2019-05-01",
            "genre": "Ambient",
            "tracknumber": "1/2",
            "composer": "A. Composer",
            "license": "CC BY 4.0",
            "copyright": "2019 The Testers",
        },
    )
    write_audio(root / "album" / "02 second.ogg", freq=330, seed=1, tags={"title": "Second"})
    write_audio(root / "Some Band - Untagged Song.wav", freq=262, seed=2)
    (root / "notes.txt").write_text("not audio")
    return root


def _tracks(catalog) -> dict[str, Track]:
    with catalog.session() as s:
        rows = s.scalars(select(Track)).all()
        for t in rows:
            _ = t.artist, t.album, t.features, t.tags
        return {Path(fs_path(t.path)).name: t for t in rows}


def test_ingest_reads_tags_analyses_and_reports(catalog, library):
    summary = ingest(catalog, [library], workers=1, progress=False)
    assert (summary.added, summary.updated, summary.unchanged) == (3, 0, 0)
    assert summary.skipped == [(str(library / "notes.txt"), "unsupported format '.txt'")]
    tracks = _tracks(catalog)
    first = tracks["01 first.flac"]
    assert first.title == "First Light" and first.artist.name == "The Testers"
    assert first.album.title == "Synthetic" and first.year == 2019 and first.track_number == 1
    assert first.composer == "A. Composer" and first.licence == "CC BY 4.0"
    assert {(t.name, t.kind, t.origin) for t in first.tags} == {("ambient", "genre", "file")}
    assert first.duration == pytest.approx(2.0, abs=0.01) and first.sample_rate == 22050
    # A lone sine has no key to speak of (the v2 profiles expect harmonic tones, so A can
    # read as its own key or as the fifth of D); that one was found and stored is the point.
    assert first.features.key in ("A", "D") and first.features.loudness_db < 0
    assert first.features.loudness_lufs < 0
    assert first.features.key_method.startswith("profile-v2")
    untagged = tracks["Some Band - Untagged Song.wav"]
    assert (untagged.title, untagged.artist.name) == ("Untagged Song", "Some Band")
    assert len(first.content_hash) == 64


def test_second_run_is_a_no_op(catalog, library):
    ingest(catalog, [library], workers=1, progress=False)
    before = {p: (t.id, t.features.analysed_at) for p, t in _tracks(catalog).items()}
    again = ingest(catalog, [library], workers=1, progress=False)
    assert (again.added, again.updated, again.moved, again.unchanged) == (0, 0, 0, 3)
    after = {p: (t.id, t.features.analysed_at) for p, t in _tracks(catalog).items()}
    assert after == before


def test_moved_file_keeps_its_track_and_changed_file_is_reanalysed(catalog, library):
    ingest(catalog, [library], workers=1, progress=False)
    tracks = _tracks(catalog)
    first_id, second = tracks["01 first.flac"].id, tracks["02 second.ogg"]
    (library / "elsewhere").mkdir()
    shutil.move(library / "album" / "01 first.flac", library / "elsewhere" / "renamed.flac")
    write_audio(library / "album" / "02 second.ogg", freq=523, seed=9, seconds=3.0)
    summary = ingest(catalog, [library], workers=1, progress=False)
    assert (summary.moved, summary.updated, summary.added) == (1, 1, 0)
    tracks = _tracks(catalog)
    assert "01 first.flac" not in tracks and tracks["renamed.flac"].id == first_id
    assert tracks["renamed.flac"].title == "First Light"
    changed = tracks["02 second.ogg"]
    assert changed.id == second.id and changed.content_hash != second.content_hash
    assert changed.duration == pytest.approx(3.0, abs=0.01)
    with catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(AudioFeatures)) == 3


def test_missing_file_is_reported_and_kept(catalog, library):
    ingest(catalog, [library], workers=1, progress=False)
    (library / "Some Band - Untagged Song.wav").unlink()
    summary = ingest(catalog, [library], workers=1, progress=False)
    assert summary.missing == [str(library / "Some Band - Untagged Song.wav")]
    assert len(_tracks(catalog)) == 3


def test_duplicates_in_two_folders_are_one_track_and_moves_still_work(catalog, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    write_audio(a / "song.flac", tags={"title": "Twice"})
    shutil.copy(a / "song.flac", b / "copy of song.flac")
    summary = ingest(catalog, [tmp_path], workers=1, progress=False)
    assert summary.added == 1
    assert summary.duplicates == [(str(b / "copy of song.flac"), str(a / "song.flac"))]
    (track,) = _tracks(catalog).values()
    (a / "song.flac").unlink()
    summary = ingest(catalog, [tmp_path], workers=1, progress=False)
    assert (summary.moved, summary.added, summary.duplicates) == (1, 0, [])
    assert _tracks(catalog)["copy of song.flac"].id == track.id


def test_parallel_workers_match_a_single_process(catalog_url, other_url, library):
    one, two = open_catalog(catalog_url), open_catalog(other_url)
    ingest(one, [library], workers=1, progress=False)
    summary = ingest(two, [library], workers=2, progress=False, batch_size=1)
    assert summary.added == 3
    one.close(), two.close()
    assert _snapshot(catalog_url) == _snapshot(other_url)


def test_paths_round_trip_for_undecodable_names(tmp_path):
    weird = os.fsdecode(os.path.join(os.fsencode(str(tmp_path)), b"caf\xe9.wav"))
    stored = db_path(weird)
    stored.encode("utf-8")  # storable text
    assert fs_path(stored) == weird
    emoji = str(tmp_path / "🎵 tune.wav")
    assert db_path(emoji) == emoji == fs_path(emoji)


def test_cli_json_summary(library, capsys, catalog_url):
    assert cli_main(["ingest", str(library), "--no-embed", "--workers", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["added"] == 3 and out["skipped"][0]["reason"].startswith("unsupported format")


def test_model_tag_selection_keeps_top_few_per_model():
    class T:
        def __init__(self, name, conf, source, kind="genre"):
            self.name, self.confidence, self.source, self.kind = name, conf, source, kind

    confs = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
    tags = [T(f"t{i}", c, "MSD_musicnn") for i, c in enumerate(confs)]
    tags += [T("rock", 0.5, "MTT_musicnn"), T("t0", 0.95, "MTT_musicnn"), T("dust", 0.01, "MTT")]
    kept = {name: conf for name, _kind, conf in select_model_tags(tags)}
    assert set(kept) == {"t0", "t1", "t2", "t3", "t4", "t5", "t6", "rock"}
    assert kept["t0"] == 0.95  # one row per name, highest confidence


def _snapshot(url: str) -> list[tuple]:
    """The catalog's content, independent of row ids and timestamps (either backend)."""
    with open_catalog(url) as catalog, catalog.engine.connect() as conn:
        rows = conn.execute(
            text(
                """SELECT t.id, t.path, t.content_hash, t.title, t.duration, ar.name, al.title,
                          f.tempo, f.key, f.mode, f.loudness_db
                   FROM tracks t LEFT JOIN artists ar ON ar.id = t.artist_id
                   LEFT JOIN albums al ON al.id = t.album_id
                   JOIN audio_features f ON f.track_id = t.id ORDER BY t.path"""
            )
        ).all()
        tags: dict[int, list[str]] = {}
        for track_id, name, origin in conn.execute(
            text("SELECT track_id, name, origin FROM tags ORDER BY name")
        ):
            tags.setdefault(track_id, []).append(f"{name}:{origin}")
        counts = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM tracks), (SELECT count(*) FROM audio_features),"
                " (SELECT count(*) FROM artists), (SELECT count(DISTINCT path) FROM tracks)"
            )
        ).one()
    return [(*row[1:], ",".join(tags.get(row[0], [])) or None) for row in rows] + [tuple(counts)]


def _run_ingest(home: Path, music: Path, url: str) -> subprocess.Popen:
    env = dict(os.environ, MUSICBERT_HOME=str(home), MUSICBERT_DB=url)
    exe = Path(sys.executable).with_name("musicbert")
    args = [str(exe), "ingest", str(music), "--no-embed", "--batch-size", "2", "--workers", "2"]
    return subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )


def _committed(url: str) -> int:
    """Tracks through the last stage, analysis (rows all come first; 0 before the catalog)."""
    if url.startswith("sqlite:///"):
        db = Path(url.removeprefix("sqlite:///"))
        if not db.exists():
            return 0
        try:
            conn = sqlite3.connect(db, timeout=1)
            try:
                return conn.execute("SELECT count(*) FROM audio_features").fetchone()[0]
            finally:
                conn.close()
        except sqlite3.Error:
            return 0
    import psycopg2
    from sqlalchemy import create_engine

    engine = create_engine(url)  # a bare connection: not opening (so not migrating) it
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM audio_features")).scalar()
    except DBAPIError as exc:
        if isinstance(exc.orig, psycopg2.errors.UndefinedTable):
            return 0
        raise
    finally:
        engine.dispose()


@pytest.mark.slow
def test_killed_run_then_rerun_equals_an_uninterrupted_run(tmp_path, other_url):
    music = tmp_path / "music"
    music.mkdir()
    for i in range(24):
        write_audio(music / f"track {i:02d}.flac", seconds=4.0, freq=200 + 15 * i, seed=i)
    killed_home, clean_home = tmp_path / "killed", tmp_path / "clean"
    killed_home.mkdir(), clean_home.mkdir()
    # the killed run's catalog: a file in its own home, or the second PostgreSQL database
    killed = other_url if other_url.startswith("postgresql") else None
    killed = killed or f"sqlite:///{killed_home / 'catalog.db'}"
    clean = f"sqlite:///{clean_home / 'catalog.db'}" if killed.startswith("sqlite") else None
    clean = clean or os.environ["MUSICBERT_DB"]  # catalog_url's database
    proc = _run_ingest(killed_home, music, killed)
    deadline = time.monotonic() + 120
    while _committed(killed) < 4 and proc.poll() is None:
        assert time.monotonic() < deadline, "ingest made no progress"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process group, workers included
    proc.wait()
    partial = _committed(killed)
    assert 0 < partial < 24, "the kill should land part-way through"
    rerun = _run_ingest(killed_home, music, killed)
    assert rerun.wait(timeout=300) == 0, rerun.stderr.read().decode()
    clean_run = _run_ingest(clean_home, music, clean)
    assert clean_run.wait(timeout=300) == 0, clean_run.stderr.read().decode()
    resumed = _snapshot(killed)
    assert resumed == _snapshot(clean)
    assert resumed[-1] == (24, 24, 0, 24)


def _embedder():
    from musicbert.embedder import Embedder

    return Embedder.load()


@pytest.mark.slow
def test_ingest_with_embedder_stores_vectors_and_model_tags(catalog, tmp_path):
    library = tmp_path / "longer"
    library.mkdir()
    for i, name in enumerate(("a.flac", "b.ogg", "c.wav")):  # over one patch: worth tags
        write_audio(library / name, seconds=4.0, freq=262 + 70 * i, seed=i)
    embedder = _embedder()
    summary = ingest(catalog, [library], embedder=embedder, workers=1, progress=False)
    assert summary.embedded == 3
    with catalog.session() as s:
        rows = s.scalars(select(Embedding)).all()
        assert {r.model_id for r in rows} == {str(embedder.model_id)}
        vector = np.frombuffer(rows[0].vector, dtype="<f4")
        assert vector.size == rows[0].dim == embedder.dim and np.isfinite(vector).all()
        model_tags = s.scalars(select(Tag).where(Tag.origin == "model")).all()
        assert model_tags and all(0 < t.confidence <= 1 for t in model_tags)
    # A different model id: reindex re-embeds everything, then nothing.
    embedder.model_id = str(embedder.model_id) + "-other"
    assert reindex(catalog, embedder, progress=False) == 3
    assert reindex(catalog, embedder, progress=False) == 0
