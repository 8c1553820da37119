"""The order of an ingest's stages (facts, embedding, analysis) and resuming each one."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event, func, select

from catalog.db import open_catalog
from catalog.ingest import analyse_pending, ingest
from catalog.ingest_progress import IngestProgress, library_growth, ready_count
from catalog.models import Artist, AudioFeatures, Embedding, Track
from tests.audio_fixtures import write_audio


@pytest.fixture
def catalog(tmp_path):
    cat = open_catalog(f"sqlite:///{tmp_path / 'lib.db'}")
    yield cat
    cat.close()


@pytest.fixture
def music(tmp_path) -> Path:
    root = tmp_path / "music"
    for i in range(6):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        write_audio(folder / f"{i}.flac", seconds=4.0, freq=220 + 40 * i, seed=i)
    return root


class Recorder:
    """The tables a catalog inserts into, in the order the statements reach the database."""

    def __init__(self, catalog) -> None:
        self.tables: list[str] = []
        event.listen(catalog.engine, "before_cursor_execute", self.saw)

    def saw(self, _conn, _cursor, statement, *_args) -> None:
        words = statement.split()
        if words[:2] == ["INSERT", "INTO"]:
            self.tables.append(words[2].strip('"'))

    def last(self, table: str) -> int:
        return max(i for i, t in enumerate(self.tables) if t == table)

    def first(self, table: str) -> int:
        return self.tables.index(table)


class TinyEmbedder:
    """A stand-in for MusicBERT that decodes the real audio: the stages are under test
    here, not the model (``test_ingest`` runs the real one)."""

    model_id = "tiny-test-model"

    def describe_stream(self, blocks):
        samples = np.concatenate(list(blocks))
        vector = np.array([samples.std(), np.abs(samples).max(), 1.0], np.float32)

        class Description:
            embedding = vector / np.linalg.norm(vector)
            duration = samples.size / 16000
            tags: list = []

        return Description()


def _counts(catalog) -> tuple[int, int, int]:
    with catalog.session() as s:
        return (
            s.scalar(select(func.count()).select_from(Track)),
            s.scalar(select(func.count()).select_from(Embedding)),
            s.scalar(select(func.count()).select_from(AudioFeatures)),
        )


def test_rows_come_first_then_embeddings_then_analysis(catalog, music):
    seen = Recorder(catalog)
    summary = ingest(catalog, [music], embedder=TinyEmbedder(), workers=2, progress=False)
    assert (summary.added, summary.embedded, summary.analysed) == (6, 6, 6)
    # every row is written before the first vector, every vector before the first analysis
    assert seen.last("tracks") < seen.first("embeddings")
    assert seen.last("embeddings") < seen.first("audio_features")
    assert set(summary.stages) == {"facts", "embedding", "analysis"}
    assert summary.stages["embedding"]["audio_s"] == pytest.approx(24.0, abs=0.1)
    assert summary.analysed_seconds == pytest.approx(24.0, abs=0.1)  # each track once


def test_an_interrupted_run_is_finished_by_the_next(catalog, music, tmp_path):
    embedder = TinyEmbedder()
    first = ingest(catalog, [music], embedder=embedder, workers=1, analysis=False, progress=False)
    assert first.added == 6 and _counts(catalog) == (6, 6, 0)  # as if killed after stage 2
    with catalog.session() as s:  # and as if killed part-way through stage 2
        s.execute(Embedding.__table__.delete().where(Embedding.track_id.in_([1, 2, 3])))
    again = ingest(catalog, [music], embedder=embedder, workers=1, progress=False)
    assert (again.added, again.unchanged, again.embedded, again.analysed) == (0, 6, 3, 6)
    assert _counts(catalog) == (6, 6, 6)
    clean = open_catalog(f"sqlite:///{tmp_path / 'clean.db'}")
    ingest(clean, [music], embedder=embedder, workers=1, progress=False)
    assert _durations(catalog) == _durations(clean)
    clean.close()


def _durations(catalog) -> list[tuple]:
    with catalog.session() as s:
        rows = s.execute(
            select(Track.path, Track.duration, AudioFeatures.key, AudioFeatures.loudness_db)
            .join(AudioFeatures)
            .order_by(Track.path)
        ).all()
    return [tuple(r) for r in rows]


def test_analysis_alone_fills_in_what_an_ingest_left(catalog, music):
    ingest(catalog, [music], workers=1, analysis=False, progress=False)
    assert _counts(catalog) == (6, 0, 0)
    done = analyse_pending(catalog, [music], workers=2, progress=False)
    assert done.analysed == 6 and _counts(catalog) == (6, 0, 6)
    assert analyse_pending(catalog, [music], workers=1, progress=False).analysed == 0


def test_a_file_that_does_not_decode_loses_its_row_and_artist(catalog, tmp_path):
    music = tmp_path / "music"
    music.mkdir()
    write_audio(music / "good.ogg", seconds=3, tags={"artist": "Kept"})
    wav = write_audio(tmp_path / "source.wav", seconds=10.0).read_bytes()
    at = wav.index(b"data") + 4  # a header that says 2 ms: the row first, then nothing
    broken = music / "Gone Band - says 2 ms.wav"  # its artist comes from the file name
    broken.write_bytes(wav[:at] + struct.pack("<I", 100) + wav[at + 4 :])
    summary = ingest(catalog, [music], workers=1, progress=False)
    assert summary.stages["facts"]["tracks"] == 2  # both had a row for a while
    assert summary.added == 1 and [p for p, _ in summary.skipped] == [str(broken)]
    with catalog.session() as s:
        assert s.scalars(select(Artist.name)).all() == ["Kept"]
        assert s.scalar(select(func.count()).select_from(Track)) == 1


def test_growth_counts_what_search_can_use(catalog, music):
    ingest(catalog, [music], workers=1, analysis=False, progress=False)
    with IngestProgress(catalog) as note:
        note.update(force=True, stage="embedding", expected=6, model_id="tiny-test-model")
        assert library_growth(catalog).ready == 0  # rows, but nothing embedded
        ingest(catalog, [music], embedder=TinyEmbedder(), workers=1, note=note, progress=False)
        assert library_growth(catalog).ready == 6
    assert ready_count(catalog, None) == 6  # analysed: what an ingest without a model waits for


@pytest.mark.slow
def test_worker_copies_of_the_model_embed_as_this_process_does(tmp_path, music):
    """On a CPU with 2 workers each worker embeds with its own copy of the model (one
    thread); the vectors and model tags are those of the ingest process's own model."""
    import warnings

    from catalog.ingest_workers import embed_file
    from musicbert.embedder import Embedder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        embedder = Embedder.load(device="cpu")
    catalog = open_catalog(f"sqlite:///{tmp_path / 'two.db'}")
    summary = ingest(catalog, [music], embedder=embedder, workers=2, progress=False)
    assert summary.embedded == 6
    with catalog.session() as s:
        rows = s.execute(select(Track.path, Embedding.vector).join(Embedding)).all()
    catalog.close()
    for path, blob in rows:
        here = embed_file(embedder, path).vector
        assert float(np.dot(np.frombuffer(blob, "<f4"), here)) > 0.99999, path
