"""pgvector HNSW in PostgreSQL against FAISS IVF-PQ, on the same vectors, filters and queries.

The vectors are ``benchmarks/search.py``'s: L2-normalised 256-d points drawn around
random cluster centres (uniform noise would make recall meaningless), written to the
same cache files, so the FAISS rows here match that script's. PostgreSQL is the
``pgserver`` wheel's 16.2 + pgvector 0.6.2, started as in the tests, with the real
catalog schema (``open_catalog``): n tracks by 100 artists with durations, their
embeddings bulk-copied (binary COPY, ``vector`` and ``embedding`` both given), then the
model's HNSW index built by ``PgVectorIndex.ensure_hnsw`` (timed). Searches go through
``PgVectorIndex.search`` (one SELECT per query, from this client: pool checkout,
``SET LOCAL``, planning and the transfer included) and ``VectorIndex.search``.

Filters, the same for both: one artist (1%), under 4 minutes (~40%), and both (~0.4%).
For each: p50/p95 latency, recall@10 against exact search over the passing tracks,
and whether every query returned k tracks that all pass.

    .venv/bin/python benchmarks/search_pgvector.py --sizes 100000
    nohup nice -n 10 .venv/bin/python benchmarks/search_pgvector.py --sizes 1000000 \\
        --keep /tmp/mb-pgbench > /tmp/pgbench.log 2>&1 &

``--keep DIR`` keeps the server's data (and the built index) for later runs.
Writes benchmarks/results/search_pgvector.json and prints a table.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from report import write_results  # noqa: E402
from search import (  # noqa: E402
    build_cached,
    cached_base,
    clustered,
    ground_truth,
    make_centres,
    pct,
    recall_at,
)
from sqlalchemy import select, text  # noqa: E402

from catalog.db import open_catalog  # noqa: E402
from catalog.index_config import IndexConfig  # noqa: E402
from catalog.models import Track  # noqa: E402
from catalog.pgvector_index import PgVectorIndex, SqlFilter, index_name  # noqa: E402
from tests.pg_server import start_server, stop_server  # noqa: E402

MODEL = "synthetic"
ARTISTS = 100
K = 10


def attributes(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(artist id 1..ARTISTS, duration in seconds) per track, fixed by the seed."""
    rng = np.random.default_rng(7)
    return rng.integers(1, ARTISTS + 1, n), rng.uniform(60, 600, n).round(1)


def filters(artist: np.ndarray, duration: np.ndarray) -> dict[str, tuple]:
    """name -> (SQL filter query, allowed track ids as numpy)."""
    ids = np.arange(1, len(artist) + 1, dtype=np.int64)
    short = duration <= 240
    by_artist = artist == 7
    return {
        "artist (1%)": (select(Track.id).where(Track.artist_id == 7), ids[by_artist]),
        "under 4 min (40%)": (select(Track.id).where(Track.duration <= 240), ids[short]),
        "artist + under 4 min (0.4%)": (
            select(Track.id).where(Track.artist_id == 7, Track.duration <= 240),
            ids[by_artist & short],
        ),
    }


def load(catalog, base: np.ndarray, artist: np.ndarray, duration: np.ndarray) -> float:
    """Artists, tracks and embeddings by COPY; seconds taken. Track i+1 has base[i]."""
    n, dim = base.shape
    start = time.perf_counter()
    raw = catalog.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("ALTER TABLE embeddings DISABLE TRIGGER embeddings_vector_sync")
        rows = "".join(f"{a}\tartist {a}\tartist {a}\n" for a in range(1, ARTISTS + 1))
        cur.copy_expert("COPY artists (id, name, name_key) FROM STDIN", io.StringIO(rows))
        now = datetime.now().isoformat(sep=" ")
        for lo in range(0, n, 100_000):
            hi = min(n, lo + 100_000)
            rows = "".join(
                f"{i + 1}\t/bench/{i + 1}.flac\th{i + 1}\t0\ttrack {i + 1}\t{artist[i]}"
                f"\t{duration[i]}\t16000\t1\t{now}\t{now}\ttrack {i + 1}\n"
                for i in range(lo, hi)
            )
            cur.copy_expert(
                "COPY tracks (id, path, content_hash, file_size, title, artist_id, duration,"
                " sample_rate, channels, added_at, updated_at, title_key) FROM STDIN",
                io.StringIO(rows),
            )
            cur.copy_expert(
                "COPY embeddings (track_id, model_id, dim, vector, created_at, embedding)"
                " FROM STDIN WITH (FORMAT binary)",
                io.BytesIO(_binary_rows(np.arange(lo + 1, hi + 1), base[lo:hi])),
            )
            print(f"  loaded {hi:,} / {n:,}", flush=True)
        cur.execute("ALTER TABLE embeddings ENABLE TRIGGER embeddings_vector_sync")
        cur.execute("SELECT setval('tracks_id_seq', %s)", (n,))
        cur.execute("SELECT setval('artists_id_seq', %s)", (ARTISTS,))
        raw.commit()
        raw.dbapi_connection.autocommit = True  # VACUUM runs outside a transaction
        raw.dbapi_connection.cursor().execute("VACUUM ANALYZE")
        raw.dbapi_connection.autocommit = False  # back to the pool as it came
    finally:
        raw.close()
    return time.perf_counter() - start


def _binary_rows(track_ids: np.ndarray, vectors: np.ndarray) -> bytes:
    """PostgreSQL binary COPY of (track_id, model_id, dim, vector bytea, created_at,
    embedding vector): fixed-size rows, so one numpy structured array."""
    dim = vectors.shape[1]
    model = MODEL.encode()
    row = np.dtype(
        [
            ("nfields", ">i2"),
            ("l1", ">i4"),
            ("track", ">i4"),
            ("l2", ">i4"),
            ("model", f"S{len(model)}"),
            ("l3", ">i4"),
            ("dim", ">i4"),
            ("l4", ">i4"),
            ("bytes", "<f4", (dim,)),
            ("l5", ">i4"),
            ("created", ">i8"),
            ("l6", ">i4"),
            ("vdim", ">i2"),
            ("unused", ">i2"),
            ("values", ">f4", (dim,)),
        ]
    )
    out = np.zeros(len(track_ids), row)
    out["nfields"] = 6
    out["l1"], out["track"] = 4, track_ids
    out["l2"], out["model"] = len(model), model
    out["l3"], out["dim"] = 4, dim
    out["l4"], out["bytes"] = 4 * dim, vectors
    micros = int((time.time() - 946684800) * 1e6)  # since 2000-01-01
    out["l5"], out["created"] = 8, micros
    out["l6"], out["vdim"], out["values"] = 4 + 4 * dim, dim, vectors
    header = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
    return header + out.tobytes() + b"\xff\xff"


def exact_filtered(base: np.ndarray, queries: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Track ids of the exact top-k among ``allowed`` (1-based like the catalog)."""
    sub = base[allowed - 1]
    scores = queries @ sub.T
    top = np.argsort(-scores, axis=1)[:, :K]
    return allowed[top]


def timed(search, queries: np.ndarray, id_filter) -> tuple[list[float], np.ndarray]:
    found = np.full((len(queries), K), -1, np.int64)
    times = []
    search(queries[0], K, id_filter=id_filter)  # warm
    for i, query in enumerate(queries):
        start = time.perf_counter()
        _, ids = search(query, K, id_filter=id_filter)
        times.append((time.perf_counter() - start) * 1000)
        found[i, : ids.shape[1]] = ids[0][:K]
    return times, found


def uses_hnsw(index: PgVectorIndex, queries: np.ndarray) -> bool:
    """Whether PostgreSQL's plan for an unfiltered search walks the HNSW index."""
    stmt = index.statement(queries[0], K)
    sql = str(stmt.compile(index.catalog.engine, compile_kwargs={"literal_binds": True}))
    with index.catalog.engine.begin() as conn:
        conn.execute(text(f"SET LOCAL hnsw.ef_search = {index.plan(K, None)[1]}"))
        plan = "\n".join(r[0] for r in conn.execute(text("EXPLAIN " + sql)))
    return index_name(MODEL, index.dim) in plan


def row_for(name, label, times, found, truth, allowed=None) -> dict:
    full = all((r >= 0).sum() == min(K, len(allowed) if allowed is not None else K) for r in found)
    if allowed is not None:
        full = full and all(set(r[r >= 0].tolist()) <= set(allowed.tolist()) for r in found)
    return {
        "engine": name,
        "filter": label,
        "p50_ms": round(pct(times, 50), 2),
        "p95_ms": round(pct(times, 95), 2),
        "recall_at_10": round(recall_at(found, truth), 4),
        "full_k": bool(full),
    }


def bench_size(n: int, args, cache: Path) -> dict:
    dim = args.dim
    centres = make_centres(n, dim)
    base, source = cached_base(cache, n, dim, centres)
    queries = clustered(args.queries, dim, seed=n + 1, centres=centres)
    truth = ground_truth(base, queries, K) + 1  # catalog track ids start at 1
    artist, duration = attributes(n)
    fs = filters(artist, duration)
    report: dict = {"n": n, "dim": dim, "queries": len(queries), "rows": []}

    # ---------------------------------------------------------------- pgvector
    keep = Path(args.keep) / f"n{n}" if args.keep else None
    server = start_server(
        keep,
        {
            "shared_buffers": args.shared_buffers,
            "maintenance_work_mem": "3GB",
            "max_parallel_maintenance_workers": "2",
            "max_wal_size": "8GB",
            "work_mem": "64MB",
            "random_page_cost": "1.1",  # everything is in memory (as on an SSD)
        },
    )
    try:
        existing = server.root / "bench.json"
        if not existing.exists():
            server.sql("CREATE DATABASE bench")
        catalog = open_catalog(server.url("bench"))
        config = IndexConfig(pg_hnsw_m=args.m, pg_ef_construction=args.efc)
        if existing.exists():
            info = json.loads(existing.read_text())
        else:
            info = {"load_s": round(load(catalog, base, artist, duration), 1)}
            print(f"  loaded {n:,} rows in {info['load_s']} s", flush=True)
            start = time.perf_counter()
            PgVectorIndex(catalog, MODEL, dim, config).ensure_hnsw()
            info["build_s"] = round(time.perf_counter() - start, 1)
            existing.write_text(json.dumps(info))
        index = PgVectorIndex.open(catalog, MODEL, dim, config=config)
        with catalog.engine.connect() as conn:
            info["index_mb"] = round(
                conn.execute(
                    text("SELECT pg_relation_size(to_regclass(:n))"),
                    {"n": index_name(MODEL, dim)},
                ).scalar()
                / 2**20,
                1,
            )
            info["table_mb"] = round(
                conn.execute(text("SELECT pg_total_relation_size('embeddings')")).scalar() / 2**20,
                1,
            )
        report["pgvector"] = {**info, "m": args.m, "ef_construction": args.efc}
        print(
            f"  pgvector HNSW m={args.m} efc={args.efc}: build {info['build_s']} s,"
            f" index {info['index_mb']} MB, embeddings table + indexes {info['table_mb']} MB",
            flush=True,
        )
        # warm: one pass at the largest ef_search reads the graph into shared buffers
        index.config = IndexConfig(pg_ef_search=max(args.ef))
        timed(index.search, queries, None)
        for ef in args.ef:
            index.config = IndexConfig(pg_ef_search=ef)
            times, found = timed(index.search, queries, None)
            row = row_for("pgvector", "none", times, found, truth)
            report["rows"].append({**row, "ef_search": ef, "uses_hnsw": uses_hnsw(index, queries)})
            _print(row, f"ef_search={ef}")
        index.config = IndexConfig(pg_ef_search=args.filter_ef)  # None: by size, as shipped
        for label, (query, allowed) in fs.items():
            ftruth = exact_filtered(base, queries[: args.filtered], allowed)
            sql = SqlFilter(query, len(allowed))
            how, ef = index.plan(K, len(allowed))
            times, found = timed(index.search, queries[: args.filtered], sql)
            row = row_for("pgvector", label, times, found, ftruth, allowed)
            report["rows"].append({**row, "plan": how, "ef_search": ef})
            _print(row, f"{how} ef={ef}")
        catalog.close()
    finally:
        stop_server(server, remove=keep is None)

    # ---------------------------------------------------------------- FAISS IVF-PQ
    faiss_index, info = build_cached("ivfpq", n, base, cache, source)
    report["faiss"] = info
    print(
        f"  FAISS IVF-PQ: build {info['build_s']} s, index {info['index_mb']} MB"
        f" (+ the stored vectors for re-ranking)",
        flush=True,
    )

    def faiss_search(query, k, id_filter=None):
        allowed = None if id_filter is None else id_filter - 1
        scores, ids = faiss_index.search(query, k, id_filter=allowed)
        return scores, np.where(ids >= 0, ids + 1, -1)

    times, found = timed(faiss_search, queries, None)
    row = row_for("faiss-ivfpq", "none", times, found, truth)
    report["rows"].append(row)
    _print(row, f"nprobe={faiss_index.config.nprobe}")
    for label, (_query, allowed) in fs.items():
        ftruth = exact_filtered(base, queries[: args.filtered], allowed)
        times, found = timed(faiss_search, queries[: args.filtered], allowed)
        row = row_for("faiss-ivfpq", label, times, found, ftruth, allowed)
        report["rows"].append(row)
        _print(row, "")
    return report


def _print(row: dict, knobs: str) -> None:
    print(
        f"  {row['engine']:12s} {row['filter']:28s} {knobs:18s} p50 {row['p50_ms']:7.2f} ms"
        f"  p95 {row['p95_ms']:7.2f} ms  recall@10 {row['recall_at_10']:.3f}"
        f"  full k {row['full_k']}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--filtered", type=int, default=50, help="queries per filter")
    parser.add_argument("--m", type=int, default=16, help="pgvector HNSW m")
    parser.add_argument("--efc", type=int, default=64, help="pgvector HNSW ef_construction")
    parser.add_argument("--ef", default="40,100,200,400,700,1000", help="ef_search sweep")
    parser.add_argument(
        "--filter-ef",
        type=int,
        default=None,
        help="base ef_search when filtered (default: by size)",
    )
    parser.add_argument("--shared-buffers", default="2GB")
    parser.add_argument("--cache", default=None, help="vector + FAISS cache (search.py's)")
    parser.add_argument("--keep", default=None, help="keep PostgreSQL's data here")
    parser.add_argument(
        "--out", default=str(ROOT / "benchmarks" / "results" / "search_pgvector.json")
    )
    args = parser.parse_args()
    args.ef = [int(x) for x in args.ef.split(",")]
    cache = Path(args.cache or tempfile.mkdtemp(prefix="mb-search-"))
    cache.mkdir(parents=True, exist_ok=True)
    load_avg = os.getloadavg()
    reports = []
    for n in (int(s) for s in args.sizes.split(",")):
        print(f"\n{n:,} vectors of dim {args.dim}", flush=True)
        reports.append(bench_size(n, args, cache))
    out = {
        "load_average_start": [round(x, 2) for x in load_avg],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "sizes": reports,
    }
    print(f"\nload average {out['load_average_start']} -> {out['load_average_end']}")
    write_results(args.out, out, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
