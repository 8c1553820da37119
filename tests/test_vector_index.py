"""The FAISS index: exact answers, filters that still fill k, staying in step with SQL.

Vectors are written straight into the real SQLite ``embeddings`` table: these tests are
about index mechanics, not the model. FAISS serves SQLite catalogs only (a PostgreSQL
catalog keeps its vectors in pgvector: one test here checks that no file is made, and
tests/test_pgvector.py tests that index), so these run on SQLite.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete, select

from catalog.db import open_catalog
from catalog.index_config import FLAT_MAX, HNSW_MAX, IndexConfig, VectorIndexError
from catalog.models import Embedding, Track
from catalog.vector_index import VectorIndex, index_dir
from musicbert.errors import ConfigError
from tests.catalogs import memory_catalog

DIM = 32
MODEL = "test-model-a"


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def add_tracks(catalog, vectors: np.ndarray, model_id: str = MODEL, start: int = 0) -> list[int]:
    """Real track rows with one embedding each; returns their ids."""
    ids = []
    with catalog.session() as session:
        for i, vector in enumerate(vectors):
            n = start + i
            track = Track(path=f"/music/{model_id}/{n}.flac", content_hash=f"h{n}", title=f"t{n}")
            session.add(track)
            session.flush()
            session.add(
                Embedding(
                    track_id=track.id, model_id=model_id, dim=len(vector), vector=vector.tobytes()
                )
            )
            ids.append(track.id)
    return ids


def stored(catalog, model_id: str = MODEL, dim: int = DIM) -> tuple[np.ndarray, np.ndarray]:
    with catalog.session() as session:
        rows = session.execute(
            select(Embedding.track_id, Embedding.vector).where(Embedding.model_id == model_id)
        ).all()
    ids = np.array([r[0] for r in rows], np.int64)
    vecs = np.stack([np.frombuffer(r[1], np.float32) for r in rows]) if rows else np.zeros((0, dim))
    return ids, vecs


def exact_top(ids: np.ndarray, vecs: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    order = np.argsort(-(vecs @ query), kind="stable")[:k]
    return [int(i) for i in ids[order]]


@pytest.fixture(autouse=True)
def one_faiss_thread():
    """Two shared cores: OpenMP threads spinning against each other make training crawl."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


catalog = pytest.fixture(name="catalog")(memory_catalog)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_flat_search_is_exact_and_ids_are_track_ids(catalog, rng):
    ids = add_tracks(catalog, unit(rng, 300))
    index = VectorIndex.open(catalog, MODEL, DIM)
    assert index.kind == "flat" and index.count == 300
    assert "missing" in index.message
    sids, svecs = stored(catalog)
    for query in unit(rng, 5):
        scores, found = index.search(query, 10)
        assert found[0].tolist() == exact_top(sids, svecs, query, 10)
        assert np.all(np.diff(scores[0]) <= 1e-6)
    assert set(index.ids.tolist()) == set(ids)


def test_k_larger_than_catalog_returns_everything(catalog, rng):
    add_tracks(catalog, unit(rng, 7))
    index = VectorIndex.open(catalog, MODEL, DIM)
    scores, found = index.search(unit(rng, 1), 50)
    assert found.shape == (1, 7) and sorted(found[0].tolist()) == sorted(index.ids.tolist())


def test_empty_catalog_gives_empty_results(catalog, rng):
    index = VectorIndex.open(catalog, MODEL, DIM)
    assert index.count == 0
    scores, found = index.search(unit(rng, 1), 5)
    assert found.shape == (1, 0)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_filtered_search_fills_k_whenever_k_pass(kind, rng):
    n = 6000
    vectors = unit(rng, n)
    ids = np.arange(1, n + 1, dtype=np.int64) * 3
    store = dict(zip(ids.tolist(), vectors, strict=True))

    def source(wanted):
        return np.stack([store[int(i)] for i in wanted])

    config = IndexConfig(kind=kind, exact_below=64, nlist=32, nprobe=16, ef_search=64, pq_m=8)
    index = VectorIndex.from_vectors(ids, vectors, config=config, vector_source=source)
    assert index.kind == kind
    queries = unit(rng, 4)
    # a large allowed set goes through the faiss selector
    allowed = ids[rng.choice(n, 2500, replace=False)]
    for query in queries:
        _, found = index.search(query, 10, id_filter=allowed)
        assert len(found[0]) == 10 and set(found[0].tolist()) <= set(allowed.tolist())
        truth = exact_top(allowed, source(allowed), query, 10)
        overlap = len(set(found[0].tolist()) & set(truth)) / 10
        assert overlap == 1.0 if kind == "flat" else overlap >= 0.6
    # a small one is scored exactly; fewer than k allowed gives all of them
    few = ids[[5, 50, 500, 4000, 5999]]
    _, found = index.search(queries[0], 10, id_filter=few)
    assert sorted(found[0].tolist()) == sorted(few.tolist())
    # ids that are not in the index are ignored, not errors
    _, found = index.search(queries[0], 3, id_filter=[1, 2, int(ids[7])])
    assert found[0].tolist() == [int(ids[7])]


def test_selector_shortfall_falls_back_to_exact(rng):
    """A tiny allowed set through HNSW's selector can come back short: the exact path fills it."""
    vectors = unit(rng, 3000)
    ids = np.arange(3000, dtype=np.int64)
    config = IndexConfig(kind="hnsw", exact_below=0, ef_search=8, hnsw_m=8)
    index = VectorIndex.from_vectors(ids, vectors, config=config)
    allowed = ids[::400]  # 8 ids scattered over the graph
    _, found = index.search(unit(rng, 1), 8, id_filter=allowed)
    assert sorted(found[0].tolist()) == sorted(allowed.tolist())


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_add_remove_replace_in_memory(kind, rng):
    vectors = unit(rng, 3000)
    ids = np.arange(10, 3010, dtype=np.int64)
    store = dict(zip(ids.tolist(), vectors, strict=True))
    config = IndexConfig(kind=kind, nlist=16, nprobe=16, pq_m=8)
    index = VectorIndex.from_vectors(
        ids, vectors, config=config, vector_source=lambda w: np.stack([store[int(i)] for i in w])
    )
    new = unit(rng, 1)
    store[5000] = new[0]
    index.add([5000], new)
    assert 5000 in index and index.search(new[0], 1)[1][0, 0] == 5000
    assert index.remove([5000, 123456]) == 1
    assert 5000 not in index and 5000 not in index.search(new[0], 5)[1][0]
    replacement = unit(rng, 1)
    store[10] = replacement[0]
    index.add([10], replacement)  # same id: replaced, not duplicated
    assert index.count == 3000
    _, found = index.search(replacement[0], 5)
    assert found[0, 0] == 10 and found[0].tolist().count(10) == 1
    with pytest.raises(VectorIndexError, match="dim"):
        index.add([99999], unit(rng, 1, DIM + 1))
    with pytest.raises(VectorIndexError, match="dim"):
        index.search(unit(rng, 1, DIM + 1)[0], 3)


def test_hnsw_tombstones_are_compacted(rng):
    vectors = unit(rng, 400)
    ids = np.arange(400, dtype=np.int64)
    index = VectorIndex.from_vectors(
        ids, vectors, config=IndexConfig(kind="hnsw", compact_ratio=0.25)
    )
    index.remove(ids[:90])  # 22%: kept as tombstones
    assert index.count == 310 and index._ids.size == 400
    assert not set(index.search(vectors[5], 20)[1][0].tolist()) & set(range(90))
    index.remove(ids[90:120])  # past 25%: rebuilt without them
    assert index.count == 280 and index._ids.size == 280


def test_kind_follows_catalog_size():
    auto = IndexConfig()
    assert auto.kind_for(10) == "flat" and auto.kind_for(FLAT_MAX) == "flat"
    assert auto.kind_for(FLAT_MAX + 1) == "hnsw" and auto.kind_for(HNSW_MAX + 1) == "ivfpq"
    assert auto.kind_fits("hnsw", FLAT_MAX - 10)  # slack: no flapping at the border
    assert not auto.kind_fits("flat", FLAT_MAX + 1)
    assert IndexConfig(kind="hnsw").kind_for(5) == "hnsw"
    with pytest.raises(ConfigError):
        IndexConfig(kind="annoy")


def test_saved_beside_the_database_and_reloaded(catalog, rng):
    add_tracks(catalog, unit(rng, 50))
    index = VectorIndex.open(catalog, MODEL, DIM)
    db_file = Path(catalog.engine.url.database)
    assert index.path.parent == db_file.parent / "index" / db_file.stem
    sidecar = json.loads(index.sidecar_path.read_text())
    assert sidecar["model_id"] == MODEL and sidecar["dim"] == DIM and sidecar["kind"] == "flat"
    assert sidecar["count"] == 50 and sidecar["checksum"].startswith("sha256:")
    again = VectorIndex.open(catalog, MODEL, DIM)
    assert again.message.startswith("loaded") and again.count == 50


def test_in_memory_database_is_not_persisted(rng):
    catalog = open_catalog("sqlite://")
    add_tracks(catalog, unit(rng, 20))
    index = VectorIndex.open(catalog, MODEL, DIM)
    assert index.path is None and index_dir(catalog) is None and index.count == 20


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda p: p.unlink(), "missing"),
        (lambda p: p.write_bytes(p.read_bytes()[:-40]), "corrupt"),
        (lambda p: p.write_bytes(b"\0" * 64 + p.read_bytes()[64:]), "corrupt"),
        (lambda p: p.with_suffix(".json").write_text("{not json"), "unreadable"),
    ],
)
def test_damaged_index_is_rebuilt(catalog, rng, damage, reason):
    add_tracks(catalog, unit(rng, 60))
    path = VectorIndex.open(catalog, MODEL, DIM).path
    damage(path)
    index = VectorIndex.open(catalog, MODEL, DIM)
    assert index.message.startswith("rebuilt") and reason in index.message
    sids, svecs = stored(catalog)
    query = unit(rng, 1)[0]
    assert index.search(query, 5)[1][0].tolist() == exact_top(sids, svecs, query, 5)


def test_index_from_another_model_is_rebuilt_never_a_dimension_crash(catalog, rng):
    add_tracks(catalog, unit(rng, 30))
    old = VectorIndex.open(catalog, MODEL, DIM)
    other = np.stack([unit(rng, 1, 48)[0] for _ in range(30)])
    with catalog.session() as session:
        for track_id, vector in zip(old.ids.tolist(), other, strict=True):
            session.add(
                Embedding(track_id=track_id, model_id="model-b", dim=48, vector=vector.tobytes())
            )
    # same file name on purpose: the sidecar says which model built it
    index = VectorIndex.open(catalog, "model-b", 48, path=old.path)
    assert "built by another model" in index.message and index.dim == 48
    assert index.search(other[3], 1)[1][0, 0] == old.ids[3]


def test_out_of_step_index_catches_up(catalog, rng):
    ids = add_tracks(catalog, unit(rng, 40))
    VectorIndex.open(catalog, MODEL, DIM)
    # behind the index's back: add 2, delete 1, re-embed 1 (as ingest does: delete + insert)
    new_ids = add_tracks(catalog, unit(rng, 2), start=1000)
    fresh = unit(rng, 1)[0]
    with catalog.session() as session:
        session.delete(session.get(Track, ids[0]))
        session.execute(delete(Embedding).where(Embedding.track_id == ids[1]))
        session.add(Embedding(track_id=ids[1], model_id=MODEL, dim=DIM, vector=fresh.tobytes()))
    index = VectorIndex.open(catalog, MODEL, DIM)
    assert "2 added, 1 removed" in index.message
    assert ids[0] not in index and all(i in index for i in new_ids)
    assert index.search(fresh, 1)[1][0, 0] == ids[1]
    sids, svecs = stored(catalog)
    assert np.allclose(index.vectors(sids), svecs, atol=1e-6)
    assert VectorIndex.open(catalog, MODEL, DIM).message.startswith("loaded")


def test_out_of_step_hnsw_catches_up(catalog, rng):
    ids = add_tracks(catalog, unit(rng, 300))
    config = IndexConfig(kind="hnsw")
    index = VectorIndex.open(catalog, MODEL, DIM, config=config)
    with catalog.session() as session:
        session.execute(delete(Track).where(Track.id.in_(ids[:10])))
    index.refresh(max_age=0)
    assert index.count == 290 and not set(ids[:10]) & set(index.ids.tolist())
    sids, svecs = stored(catalog)
    query = unit(rng, 1)[0]
    assert index.search(query, 10)[1][0].tolist() == exact_top(sids, svecs, query, 10)


@pytest.mark.postgres
def test_postgres_catalog_keeps_its_vectors_in_pgvector_not_a_file(pg_url, rng, isolated_home):
    catalog = open_catalog(pg_url)
    try:
        add_tracks(catalog, unit(rng, 25))
        index = VectorIndex.open(catalog, MODEL, DIM)
        assert index.kind == "pgvector-hnsw" and index.path is None
        assert not (isolated_home / "index").exists()
        sids, svecs = stored(catalog)
        query = unit(rng, 1)[0]
        assert index.search(query, 5)[1][0].tolist() == exact_top(sids, svecs, query, 5)
        assert "in the database" in VectorIndex.open(catalog, MODEL, DIM).message
    finally:
        catalog.close()


WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from sqlalchemy import delete
    from catalog.db import open_catalog
    from catalog.models import Embedding, Track
    from catalog.vector_index import VectorIndex
    catalog = open_catalog(sys.argv[1])
    model, dim, seed = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rng = np.random.default_rng(seed)
    index = VectorIndex.open(catalog, model, dim)
    n = 0
    while True:
        with catalog.session() as session:
            ids = index.ids
            vec = rng.standard_normal(dim).astype(np.float32)
            vec /= np.linalg.norm(vec)
            track = Track(path=f"/k/{seed}/{n}", content_hash="x", title=f"k{n}")
            session.add(track)
            session.flush()
            session.add(Embedding(track_id=track.id, model_id=model, dim=dim, vector=vec.tobytes()))
            victim, again = (int(x) for x in rng.choice(ids, 2, replace=False))
            session.delete(session.get(Track, victim))
            session.execute(delete(Embedding).where(Embedding.track_id == again))
            vec2 = rng.standard_normal(dim).astype(np.float32)
            session.add(Embedding(track_id=again, model_id=model, dim=dim,
                                  vector=(vec2 / np.linalg.norm(vec2)).tobytes()))
        index.sync()
        n += 1
        print(n, flush=True)
    """
)


@pytest.mark.slow
def test_killed_mid_update_then_search_answers_correctly(catalog, rng, tmp_path):
    """SIGKILL a process that keeps changing SQL and saving the index; reopen; answers exact."""
    dim = 64
    add_tracks(catalog, unit(rng, 6000, dim), model_id="kill-model")
    VectorIndex.open(catalog, "kill-model", dim)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    outcomes = []
    for round_ in range(4):
        proc = subprocess.Popen(
            [sys.executable, str(script), catalog.url, "kill-model", str(dim), str(round_)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for _ in range(2 + round_):  # let it finish a few updates, then kill it mid-flight
            assert proc.stdout.readline(), proc.stderr.read().decode()
        time.sleep(float(rng.uniform(0.0, 0.05)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        index = VectorIndex.open(catalog, "kill-model", dim)
        outcomes.append(index.message.split(":")[0])
        sids, svecs = stored(catalog, "kill-model", dim)
        assert index.count == len(sids)
        for query in unit(rng, 3, dim):
            found = index.search(query, 10)[1][0].tolist()
            assert found == exact_top(sids, svecs, query, 10)
    index.save()  # a writer under the lock sweeps temp files the killed ones left behind
    assert not list(index.path.parent.glob(".*.tmp"))
    print(outcomes)
