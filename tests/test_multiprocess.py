"""Several processes on one catalog: two assistants searching while an ingest writes.

Real processes (spawned, each opening the catalog itself) on each backend: SQLite in WAL
mode with the FAISS index file shared between them, and PostgreSQL + pgvector. The
writer commits batches the way ingest does (rows and vectors in one transaction); the
searchers keep answering "more like this, by this artist" and look for each new track
as soon as its batch is committed. Stated freshness: a committed track is found by the
other processes' next search, within ``VISIBLE_WITHIN_S``; the assertions check no
error reached a searcher, no row was lost or doubled, and the measured delay.
"""

from __future__ import annotations

import multiprocessing
import time
import traceback

import numpy as np
import pytest
from sqlalchemy import func, select

from catalog.db import open_catalog
from catalog.models import Artist, Embedding, Track

MODEL, DIM = "mp-test", 32
SEED_TRACKS, BATCHES, PER_BATCH = 40, 12, 8
#: A track committed by one process is found by another's next search within this time
#: (the searchers here ask every few milliseconds; SQLite's index reloads on its data
#: version, pgvector reads the rows themselves).
VISIBLE_WITHIN_S = 2.0


class VectorsOnly:
    """The embedder a searcher that only asks "more like this" needs: no text tower."""

    model_id, dim = MODEL, DIM

    def embed_text(self, texts):  # pragma: no cover - never called by similar()
        raise AssertionError("similar() does not embed text")


def _vector(track_no: int) -> bytes:
    return np.random.default_rng(track_no).standard_normal(DIM).astype("<f4").tobytes()


def _add_tracks(catalog, first: int, count: int) -> list[int]:
    """One batch in one transaction: tracks by 'Maxstack' or 'Other', with vectors."""
    with catalog.session() as s:
        artists = {a.name: a for a in s.scalars(select(Artist))}
        ids = []
        for n in range(first, first + count):
            track = Track(
                path=f"/music/{n}.flac",
                content_hash=str(n),
                title=f"Track {n}",
                artist=artists["Maxstack" if n % 2 else "Other"],
                duration=100.0 + n,
            )
            s.add(track)
            s.flush()
            s.add(Embedding(track_id=track.id, model_id=MODEL, dim=DIM, vector=_vector(n)))
            ids.append(track.id)
    return ids


def _writer(url: str, committed, errors) -> None:
    try:
        with open_catalog(url) as catalog:
            for batch in range(BATCHES):
                first = SEED_TRACKS + batch * PER_BATCH
                ids = _add_tracks(catalog, first, PER_BATCH)
                committed.put((max(ids), time.monotonic()))
                time.sleep(0.15)
    except Exception:
        errors.put("writer: " + traceback.format_exc())
    finally:
        committed.put(None)


def _searcher(url: str, name: str, newest, stop, errors, delays, ready) -> None:
    from catalog.filters import SearchFilters
    from catalog.search import SearchEngine
    from musicbert.errors import NotFoundError

    try:
        with open_catalog(url) as catalog:
            engine = SearchEngine(catalog, VectorsOnly())
            rng = np.random.default_rng(len(name))
            seen = 0
            searches = 0
            deadline = None
            while not stop.is_set() or seen < newest.get()[0]:
                if stop.is_set():  # the last batch must show up too, but not forever
                    deadline = deadline or time.monotonic() + 3 * VISIBLE_WITHIN_S
                    if time.monotonic() > deadline:
                        raise AssertionError(f"track {newest.get()[0]} never became visible")
                target, committed_at = newest.get()
                if target > seen:
                    try:
                        hits = engine.similar(target, k=3)
                    except NotFoundError:
                        hits = None  # not visible yet: ask again on the next round
                    if hits is not None:
                        delays.put(time.monotonic() - committed_at)
                        seen = target
                seed = int(rng.integers(1, SEED_TRACKS + 1))
                hits = engine.similar(seed, k=5, filters=SearchFilters(artist="maxstack"))
                assert len(hits) == 5 and all(h.artist == "Maxstack" for h in hits), hits
                searches += 1
                if searches == 1:
                    ready.put(name)
            errors.put(f"ok {name} {searches}")
    except Exception:
        errors.put(f"{name}: " + traceback.format_exc())


@pytest.mark.slow
def test_two_searchers_and_an_ingest_on_one_catalog(catalog_url):
    with open_catalog(catalog_url) as catalog:
        with catalog.session() as s:
            s.add_all([Artist(name="Maxstack"), Artist(name="Other")])
        _add_tracks(catalog, 0, SEED_TRACKS)
        from catalog.vector_index import VectorIndex

        VectorIndex.open(catalog, MODEL, DIM).close()  # as `musicbert ingest` leaves it
    ctx = multiprocessing.get_context("spawn")
    committed, errors, delays, ready = ctx.Queue(), ctx.Queue(), ctx.Queue(), ctx.Queue()
    newest = _Newest(ctx)
    stop = ctx.Event()
    searchers = [
        ctx.Process(
            target=_searcher,
            args=(catalog_url, f"s{i}", newest, stop, errors, delays, ready),
        )
        for i in range(2)
    ]
    writer = ctx.Process(target=_writer, args=(catalog_url, committed, errors))
    for p in searchers:
        p.start()
    for _ in searchers:  # both are up and answering before the ingest starts
        assert ready.get(timeout=120), errors.get(timeout=1)
    writer.start()
    while (item := committed.get(timeout=180)) is not None:
        newest.set(*item)
    stop.set()
    writer.join(timeout=60)
    for p in searchers:
        p.join(timeout=120)
    reports = [errors.get(timeout=5) for _ in searchers]
    assert errors.empty() and all(r.startswith("ok ") for r in reports), reports
    assert all(int(r.split()[-1]) > 0 for r in reports)
    measured = []
    while not delays.empty():
        measured.append(delays.get())
    print(f"new tracks visible after {max(measured):.3f} s at most ({len(measured)} seen)")
    assert measured and max(measured) <= VISIBLE_WITHIN_S, measured
    total = SEED_TRACKS + BATCHES * PER_BATCH
    with open_catalog(catalog_url) as catalog, catalog.session() as s:
        assert s.scalar(select(func.count(Track.id))) == total
        assert s.scalar(select(func.count(func.distinct(Track.path)))) == total
        assert s.scalar(select(func.count(Embedding.id))) == total
        assert s.scalar(select(func.count(func.distinct(Embedding.track_id)))) == total


class _Newest:
    """The newest committed track id and when it was committed, shared by processes."""

    def __init__(self, ctx):
        self._id = ctx.Value("q", 0)
        self._time = ctx.Value("d", 0.0)

    def get(self) -> tuple[int, float]:
        with self._id.get_lock():
            return self._id.value, self._time.value

    def set(self, track_id: int, when: float) -> None:
        with self._id.get_lock():
            self._time.value = when
            self._id.value = track_id
