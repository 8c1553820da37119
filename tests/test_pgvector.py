"""pgvector on a REAL PostgreSQL 16 + pgvector 0.6 server (tests/pg_server.py).

The migration (extension, column, trigger), the vectors kept in step inside the
writer's transaction, the per-model HNSW index, and both ways a filtered search is
answered: an HNSW walk with a raised ef_search, and the exact scan for selective
filters or a walk that came back short, each returning k results whenever k pass.
"""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import insert, select, text

from catalog.db import open_catalog
from catalog.index_config import IndexConfig
from catalog.models import Artist, Embedding, Track
from catalog.pgvector_index import PgVectorIndex, SqlFilter, index_name
from catalog.vector_index import VectorIndex
from musicbert.errors import ConfigError

pytestmark = pytest.mark.postgres

MODEL, DIM = "pgv-test", 32


@pytest.fixture
def pg_catalog(pg_url):
    with open_catalog(pg_url) as catalog:
        yield catalog


def stored_embedding(catalog, track_id: int) -> np.ndarray:
    with catalog.engine.connect() as conn:
        value = conn.execute(
            text("SELECT embedding::text FROM embeddings WHERE track_id = :t"), {"t": track_id}
        ).scalar()
    return np.array([float(x) for x in value.strip("[]").split(",")], np.float32)


def fill(catalog, n: int, seed: int = 0) -> np.ndarray:
    """n tracks (ids 1..n) with random vectors, artist 'even' or 'odd' by id."""
    vectors = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    with catalog.session() as s:
        even, odd = Artist(name="even"), Artist(name="odd")
        s.add_all([even, odd])
        s.flush()
        s.execute(
            insert(Track),
            [
                {
                    "id": i + 1,
                    "path": f"/m/{i + 1}.flac",
                    "content_hash": str(i),
                    "title": f"t{i + 1}",
                    "artist_id": even.id if (i + 1) % 2 == 0 else odd.id,
                    "duration": float(i),
                }
                for i in range(n)
            ],
        )
        s.execute(
            insert(Embedding),
            [
                {"track_id": i + 1, "model_id": MODEL, "dim": DIM, "vector": v.tobytes()}
                for i, v in enumerate(vectors)
            ],
        )
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def exact(unit: np.ndarray, query: np.ndarray, allowed: np.ndarray, k: int) -> list[int]:
    scores = unit[allowed - 1] @ query
    return allowed[np.argsort(-scores, kind="stable")[:k]].tolist()


def test_server_is_postgresql_16_with_pgvector(pg_catalog):
    with pg_catalog.engine.connect() as conn:
        assert conn.execute(text("SHOW server_version")).scalar().startswith("16.")
        version = conn.execute(
            text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        ).scalar()
    assert version.startswith("0.6")


def test_embedding_column_follows_every_write_in_its_transaction(pg_catalog):
    raw = np.random.default_rng(1).standard_normal(DIM).astype(np.float32) * 3
    raw[0] = 1e-42  # a subnormal float32 survives the conversion
    with pg_catalog.session() as s:
        track = Track(path="/a.flac", content_hash="a", title="A")
        s.add(track)
        s.flush()
        s.add(Embedding(track_id=track.id, model_id=MODEL, dim=DIM, vector=raw.tobytes()))
        s.flush()
        # inside the same transaction, before commit: already there
        inside = s.execute(
            text("SELECT embedding IS NOT NULL FROM embeddings WHERE track_id = :t"),
            {"t": track.id},
        ).scalar()
        assert inside
    unit = raw.astype(np.float64) / np.linalg.norm(raw.astype(np.float64))
    np.testing.assert_allclose(stored_embedding(pg_catalog, track.id), unit, rtol=1e-6, atol=1e-9)
    moved = -raw
    with pg_catalog.session() as s:  # re-embedding (reindex) updates the bytes only
        s.scalars(select(Embedding)).one().vector = moved.tobytes()
    np.testing.assert_allclose(stored_embedding(pg_catalog, track.id), -unit, rtol=1e-6, atol=1e-9)
    with pg_catalog.session() as s:  # a zero vector stays zero (no division by zero)
        s.scalars(select(Embedding)).one().vector = np.zeros(DIM, np.float32).tobytes()
    assert not stored_embedding(pg_catalog, track.id).any()


def test_upgrade_fills_the_vectors_of_an_old_catalog(pg_url):
    from tests.catalog_v1 import VECTOR, build_v1_database

    build_v1_database(pg_url)
    with open_catalog(pg_url) as catalog, catalog.session() as s:
        rows = s.execute(select(Embedding.track_id, Embedding.vector)).all()
        assert rows
        for track_id, blob in rows:
            vector = np.frombuffer(blob, "<f4").astype(np.float64)
            expected = vector / np.linalg.norm(vector) if np.linalg.norm(vector) else vector
            got = stored_embedding(catalog, track_id)
            np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)
    assert VECTOR  # the v1 fixture holds vectors at all


def test_open_creates_the_hnsw_index_once_and_no_faiss_file(pg_catalog, isolated_home):
    fill(pg_catalog, 50)
    index = VectorIndex.open(pg_catalog, MODEL, DIM)
    assert isinstance(index, PgVectorIndex) and "created the pgvector HNSW index" in index.message
    assert index.count == 50 and 7 in index and 51 not in index
    again = VectorIndex.open(pg_catalog, MODEL, DIM)
    assert "created" not in again.message
    with pg_catalog.engine.connect() as conn:
        definition = conn.execute(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"),
            {"n": index_name(MODEL, DIM)},
        ).scalar()
    assert "USING hnsw" in definition and "vector_ip_ops" in definition
    assert f"'{MODEL}'" in definition  # partial: one index per model
    assert not list(isolated_home.rglob("*.faiss"))


def test_unfiltered_search_walks_the_graph(pg_catalog):
    unit = fill(pg_catalog, 400)
    index = PgVectorIndex.open(pg_catalog, MODEL, DIM)
    query = unit[10]
    with pg_catalog.engine.begin() as conn:
        stmt = index.statement(query, 5)
        sql = str(stmt.compile(pg_catalog.engine, compile_kwargs={"literal_binds": True}))
        conn.execute(text("SET LOCAL enable_seqscan = off"))  # tiny table: favour the index
        plan = "\n".join(r[0] for r in conn.execute(text("EXPLAIN " + sql)))
    assert index_name(MODEL, DIM) in plan
    scores, ids = index.search(query, 5)
    assert ids[0, 0] == 11 and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    all_ids = np.arange(1, 401)
    found = set(ids[0].tolist())
    assert len(found & set(exact(unit, query, all_ids, 5))) >= 4


def test_filtered_search_hnsw_with_over_fetch_and_exact_for_selective_filters(pg_catalog):
    unit = fill(pg_catalog, 1200)
    index = PgVectorIndex.open(pg_catalog, MODEL, DIM, config=IndexConfig(exact_below=50))
    rng = np.random.default_rng(5)
    even = select(Track.id).join(Artist).where(Artist.name == "even")
    few = select(Track.id).where(Track.duration < 40)  # 40 tracks: 3% pass
    even_ids, few_ids = np.arange(2, 1201, 2), np.arange(1, 41)
    assert index.base_ef() == 40  # a small catalog
    assert index.plan(10, len(even_ids)) == ("hnsw", 80)  # half pass: twice the walk
    assert index.plan(10, len(few_ids))[0] == "exact"
    for _ in range(5):
        query = unit[rng.integers(0, 1200)]
        _, ids = index.search(query, 10, SqlFilter(even, len(even_ids)))
        assert len(ids[0]) == 10 and all(i % 2 == 0 for i in ids[0])
        assert len(set(ids[0].tolist()) & set(exact(unit, query, even_ids, 10))) >= 8
        _, ids = index.search(query, 10, SqlFilter(few, len(few_ids)))
        assert ids[0].tolist() == exact(unit, query, few_ids, 10)  # exact: the very same
        _, ids = index.search(query, 10, few_ids)  # given as ids: the same answer
        assert ids[0].tolist() == exact(unit, query, few_ids, 10)
    _, ids = index.search(unit[0], 100, SqlFilter(few, len(few_ids)))
    assert sorted(ids[0].tolist()) == few_ids.tolist()  # k > passing: every passing track


def test_a_walk_that_comes_back_short_falls_back_to_exact(pg_catalog):
    unit = fill(pg_catalog, 1200)
    index = PgVectorIndex.open(
        pg_catalog, MODEL, DIM, config=IndexConfig(exact_below=10, pg_ef_search=10)
    )
    query = unit[0]
    # the half of the library FARTHEST from the query: the walk around it meets none
    far = (np.argsort(unit @ query)[:600] + 1).astype(np.int64)
    assert index.plan(10, len(far)) == ("hnsw", 40)
    before = index.fallbacks
    _, ids = index.search(query, 10, far)
    assert index.fallbacks == before + 1
    assert ids[0].tolist() == exact(unit, query, np.sort(far), 10)


def test_a_user_who_may_not_create_the_extension_is_told_what_to_do(pg_server):
    name = pg_server.create_database()
    try:
        pg_server.sql("DROP ROLE IF EXISTS plain")
        pg_server.sql("CREATE ROLE plain LOGIN")
        pg_server.sql(f'ALTER DATABASE "{name}" OWNER TO plain')
        url = f"postgresql+psycopg2://plain@/{name}?host={pg_server.socket_dir}"
        with pytest.raises(ConfigError, match=r"pgvector extension \('vector'\)") as err:
            open_catalog(url)
        assert "CREATE EXTENSION vector" in str(err.value)
        pg_server.sql("CREATE EXTENSION vector", database=name)  # what an administrator does
        with open_catalog(url) as catalog:
            assert catalog.engine.dialect.name == "postgresql"
    finally:
        pg_server.drop_database(name)
        pg_server.sql("DROP ROLE IF EXISTS plain")
