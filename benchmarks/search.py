"""Search speed and quality: ANN kinds at 10k / 100k / 1M vectors, and end to end at 10k tracks.

Part 1 (synthetic): clustered, L2-normalised vectors of the model's dimension
(music embeddings cluster by style, so uniform noise would make recall
meaningless). For flat, HNSW and IVF-PQ (+ exact re-rank from the stored
vectors, here a float32 file on disk as the SQL rows would be): build time,
index size and RSS growth, single-query p50/p95 latency and recall@10 against
exact search, over a small sweep of the search-time knobs (efSearch; nprobe x
re-rank depth). Built indexes are cached in a temporary folder for the run.

Part 2 (end to end): a real SQLite catalog of 10k tracks (artists, albums,
features, tags, embeddings), ``SearchEngine.search(text, k=10)`` with the real
``Embedder`` (text tower + shared Transformer): p50/p95 of the whole call and of
its parts (text embedding, FAISS, SQL row fetch), without and with filters.

    .venv/bin/python benchmarks/search.py                 # everything (the 1M build takes minutes)
    .venv/bin/python benchmarks/search.py --sizes 10000   # quick
    .venv/bin/python benchmarks/search.py --skip-e2e --cache /tmp/mb-search-cache

Writes benchmarks/results/search.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

# Before faiss starts OpenMP: idle threads sleep instead of spinning. On a shared
# 2-core machine spinning threads starve each other (IVF training ran 3x slower).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import faiss  # noqa: E402
from report import write_results  # noqa: E402

from catalog.faiss_index import FaissIndex  # noqa: E402
from catalog.index_config import IndexConfig  # noqa: E402

QUERIES = [
    "calm piano",
    "upbeat electronic dance music",
    "sad acoustic guitar ballad",
    "heavy metal with distorted guitars",
    "jazz saxophone solo",
    "orchestral film score",
    "lo-fi hip hop beats to study to",
    "female vocals pop",
    "ambient drone",
    "fast drums and bass",
    "classical string quartet",
    "relaxing music for sleep",
]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def clustered(n: int, dim: int, seed: int, centres: np.ndarray) -> np.ndarray:
    """Points around random cluster centres with per-cluster spread, normalised."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), np.float32)
    spread = 0.35 + 0.5 * np.random.default_rng(1).random(len(centres)).astype(np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        which = rng.integers(0, len(centres), m)
        noise = rng.standard_normal((m, dim)).astype(np.float32) / np.sqrt(dim)
        block = centres[which] + spread[which, None] * noise * 1.2
        out[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def make_centres(n: int, dim: int) -> np.ndarray:
    count = max(64, n // 500)
    rng = np.random.default_rng(12345)
    # two levels: styles, and sub-styles around them
    top = rng.standard_normal((max(8, count // 16), dim)).astype(np.float32)
    top /= np.linalg.norm(top, axis=1, keepdims=True)
    sub = (
        top[rng.integers(0, len(top), count)]
        + 0.7 * rng.standard_normal((count, dim)).astype(np.float32) / np.sqrt(dim) * 2
    )
    return sub / np.linalg.norm(sub, axis=1, keepdims=True)


def cached_base(cache: Path, n: int, dim: int, centres: np.ndarray):
    """The n clustered base vectors, made once and kept in ``cache``, and a vector source
    that reads them back from that file (what the catalog's rows are to IVF-PQ re-ranking)."""
    path = cache / f"base-{n}-{dim}.f32"
    if path.exists():
        base = np.fromfile(path, np.float32).reshape(n, dim)
    else:
        base = clustered(n, dim, seed=n, centres=centres)
        base.tofile(path)
    stored = np.memmap(path, np.float32, "r", shape=(n, dim))

    def source(ids):
        return np.asarray(stored[np.asarray(ids)])

    return base, source


def ground_truth(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    flat = faiss.IndexFlatIP(base.shape[1])
    flat.add(base)
    _, ids = flat.search(queries, k)
    return ids


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def time_queries(index: FaissIndex, queries: np.ndarray, k: int, id_filter=None):
    found = np.full((len(queries), k), -1, np.int64)
    times = []
    index.search(queries[0], k, id_filter=id_filter)  # warm
    for i, query in enumerate(queries):
        start = time.perf_counter()
        _, ids = index.search(query, k, id_filter=id_filter)
        times.append((time.perf_counter() - start) * 1000)
        found[i, : ids.shape[1]] = ids[0]
    return times, found


def build_cached(
    kind: str, n: int, base: np.ndarray, cache: Path, source
) -> tuple[FaissIndex, dict]:
    """Build once per (kind, n); later sweeps and runs with --cache reuse the file."""
    config = IndexConfig(kind=kind)
    params = {"hnsw": f"m{config.hnsw_m}-efc{config.ef_construction}", "ivfpq": f"pq{config.pq_m}"}
    path = cache / f"{kind}-{n}-{params.get(kind, 'exact')}.faiss"
    info_path = path.with_suffix(".json")
    if path.exists() and info_path.exists():
        info = json.loads(info_path.read_text())
        index = FaissIndex("synthetic", base.shape[1], config, vector_source=source)
        index._index = faiss.read_index(str(path))
        index.kind = kind
        index._refresh_ids()
        index.with_config()
        return index, {**info, "cached": True}
    before = rss_mb()
    start = time.perf_counter()
    index = FaissIndex.from_vectors(
        np.arange(n, dtype=np.int64), base, config=config, vector_source=source
    )
    build_s = time.perf_counter() - start
    info = {
        "build_s": round(build_s, 2),
        "index_mb": round(index.memory_bytes() / 2**20, 1),
        "rss_growth_mb": round(rss_mb() - before, 1),
    }
    info["build_params"] = params.get(kind, "exact")
    faiss.write_index(index._index, str(path))
    info_path.write_text(json.dumps(info))
    return index, {**info, "cached": False}


def ann_benchmark(
    sizes: list[int], dim: int, nq: int, k: int, cache: Path, flat_max: int
) -> list[dict]:
    rows = []
    for n in sizes:
        centres = make_centres(n, dim)
        t0 = time.perf_counter()
        base, source = cached_base(cache, n, dim, centres)  # source: the "SQL" vectors

        queries = clustered(nq, dim, seed=n + 1, centres=centres)
        truth = ground_truth(base, queries, k)
        print(
            f"\n{n:,} vectors of dim {dim}: data + exact truth in {time.perf_counter() - t0:.1f} s"
        )
        filter_ids = np.sort(np.random.default_rng(3).choice(n, n // 10, replace=False))
        sweeps = {
            "flat": [{}],
            "hnsw": [{"ef_search": ef} for ef in (32, 64, 128, 256, 512)],
            "ivfpq": [{"nprobe": p, "rerank": r} for p in (16, 32, 64) for r in (200, 400)],
        }
        if n > flat_max:
            del sweeps["flat"]  # exact search is the ground truth above; too slow to repeat
        for kind, settings in sweeps.items():
            index, info = build_cached(kind, n, base, cache, source)
            for setting in settings:
                index.with_config(**setting)
                times, found = time_queries(index, queries, k)
                ftimes, ffound = time_queries(index, queries[:50], k, id_filter=filter_ids)
                allowed = set(filter_ids.tolist())
                row = {
                    "n": n,
                    "kind": kind,
                    **setting,
                    **info,
                    "p50_ms": round(pct(times, 50), 3),
                    "p95_ms": round(pct(times, 95), 3),
                    "recall_at_10": round(recall_at(found, truth), 4),
                    "filtered_10pct_p50_ms": round(pct(ftimes, 50), 3),
                    "filtered_10pct_p95_ms": round(pct(ftimes, 95), 3),
                    "filtered_full_k": bool(
                        all((r >= 0).sum() == k and set(r.tolist()) <= allowed for r in ffound)
                    ),
                }
                rows.append(row)
                knobs = " ".join(f"{a}={b}" for a, b in setting.items())
                print(
                    f"  {kind:6s} {knobs:22s} build {info['build_s']:7.1f} s"
                    f"  size {info['index_mb']:7.1f} MB  p50 {row['p50_ms']:7.2f} ms"
                    f"  p95 {row['p95_ms']:7.2f} ms  recall@10 {row['recall_at_10']:.3f}"
                    f"  filtered p95 {row['filtered_10pct_p95_ms']:6.2f} ms",
                    flush=True,
                )
            del index
        del base, source
    return rows


# --------------------------------------------------------------------------- end to end


def fill_catalog(catalog, n: int, dim: int, model_id: str) -> None:
    """10k realistic rows written with bulk inserts (a demo-sized personal library)."""
    from catalog.models import Album, Artist, AudioFeatures, Embedding, Tag, Track

    rng = np.random.default_rng(0)
    centres = make_centres(n, dim)
    vectors = clustered(n, dim, seed=7, centres=centres)
    tag_names = ["piano", "rock", "jazz", "electronic", "ambient", "guitar", "calm", "dance"]
    keys = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
    with catalog.engine.begin() as conn:
        conn.execute(Artist.__table__.insert(), [{"name": f"Artist {i}"} for i in range(400)])
        conn.execute(
            Album.__table__.insert(),
            [
                {"title": f"Album {i}", "artist_id": 1 + i % 400, "year": 1960 + i % 60}
                for i in range(1000)
            ],
        )
        conn.execute(
            Track.__table__.insert(),
            [
                {
                    "path": f"/music/{i:05d}.flac",
                    "content_hash": f"{i:064x}",
                    "file_size": 1000,
                    "title": f"Track number {i}",
                    "artist_id": 1 + i % 400,
                    "album_id": 1 + i % 1000,
                    "duration": float(60 + i % 400),
                    "year": 1960 + i % 60,
                    "licence": "CC-BY 4.0" if i % 3 else "CC0",
                }
                for i in range(n)
            ],
        )
        conn.execute(
            AudioFeatures.__table__.insert(),
            [
                {
                    "track_id": i + 1,
                    "tempo": float(60 + rng.integers(0, 120)),
                    "key": keys[i % 12],
                    "mode": "minor" if i % 2 else "major",
                    "silent": False,
                }
                for i in range(n)
            ],
        )
        conn.execute(
            Tag.__table__.insert(),
            [
                {
                    "track_id": i + 1,
                    "name": tag_names[(i + j * 3) % len(tag_names)],
                    "kind": "other",
                    "origin": "model",
                    "confidence": round(float(rng.random()), 3),
                }
                for i in range(n)
                for j in range(3)
            ],
        )
        conn.execute(
            Embedding.__table__.insert(),
            [
                {
                    "track_id": i + 1,
                    "model_id": model_id,
                    "dim": dim,
                    "vector": vectors[i].tobytes(),
                }
                for i in range(n)
            ],
        )


def e2e_benchmark(n: int, repeats: int, workdir: Path) -> dict:
    import torch

    from catalog.db import open_catalog
    from catalog.filters import SearchFilters
    from catalog.search import SearchEngine
    from musicbert.embedder import Embedder

    torch.set_num_threads(1)  # a query is one short text; more threads only contend
    embedder = Embedder.load()
    catalog = open_catalog(f"sqlite:///{workdir / 'e2e.db'}")
    t0 = time.perf_counter()
    fill_catalog(catalog, n, embedder.dim, str(embedder.model_id))
    fill_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    engine = SearchEngine(catalog, embedder)
    open_s = time.perf_counter() - t0
    print(
        f"\nend to end: {n:,} tracks in SQLite ({fill_s:.1f} s to fill), engine open {open_s:.2f} s"
    )
    print(f"  {engine.index.message}")

    # the parts, measured separately with the same calls the engine makes
    parts: dict[str, list[float]] = {"embed_text": [], "faiss": [], "sql_rows": []}
    for text in QUERIES * repeats:
        engine._text_cache.clear()
        start = time.perf_counter()
        vector = engine.query_vector(text)
        parts["embed_text"].append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        _, ids = engine.index.search(vector, 10)
        parts["faiss"].append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        engine._rows([int(i) for i in ids[0]])
        parts["sql_rows"].append((time.perf_counter() - start) * 1000)

    result: dict = {"n": n, "model_id": str(embedder.model_id), "untrained": embedder.untrained}
    cases = {
        "search": lambda t: engine.search(t, k=10),
        "search_filtered": lambda t: engine.search(
            t, k=10, filters=SearchFilters(tempo_min=60, tempo_max=120, tag="piano")
        ),
        "search_diverse": lambda t: engine.search(t, k=10, diversity=0.3),
    }
    for name, call in cases.items():
        call(QUERIES[0])
        for cold in (True, False):
            times, cpu = [], []
            for text in QUERIES * repeats:
                if cold:
                    engine._text_cache.clear()  # a new sentence every time: embed it
                start, start_cpu = time.perf_counter(), time.process_time()
                hits = call(text)
                times.append((time.perf_counter() - start) * 1000)
                cpu.append((time.process_time() - start_cpu) * 1000)
                assert len(hits) == 10
            label = name if cold else f"{name}_cached_text"
            result[label] = {
                "p50_ms": round(pct(times, 50), 2),
                "p95_ms": round(pct(times, 95), 2),
                "cpu_p50_ms": round(pct(cpu, 50), 2),
                "cpu_p95_ms": round(pct(cpu, 95), 2),
            }
            print(
                f"  {label:28s} p50 {pct(times, 50):7.2f} ms  p95 {pct(times, 95):7.2f} ms"
                f"   (CPU time p50 {pct(cpu, 50):6.2f} ms  p95 {pct(cpu, 95):6.2f} ms)"
            )
    for name, times in parts.items():
        result[name] = {"p50_ms": round(pct(times, 50), 3), "p95_ms": round(pct(times, 95), 3)}
        print(f"    part {name:11s} p50 {pct(times, 50):6.2f} ms  p95 {pct(times, 95):6.2f} ms")
    catalog.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--dim", type=int, default=256, help="the model's embedding dimension")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2, help="faiss OpenMP threads")
    parser.add_argument(
        "--flat-max", type=int, default=100_000, help="time flat search up to this many vectors"
    )
    parser.add_argument("--cache", help="keep built indexes here between runs (default: temp)")
    parser.add_argument("--skip-ann", action="store_true")
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--e2e-tracks", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=10, help="passes over the e2e queries")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "search.json"))
    args = parser.parse_args()

    faiss.omp_set_num_threads(args.threads)
    cache = Path(args.cache) if args.cache else Path(tempfile.mkdtemp(prefix="mb-search-"))
    cache.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.exists() else {}
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "faiss_threads": args.threads,
            "faiss": faiss.__version__,
            "load_average_at_start": os.getloadavg(),
        },
        "targets": {
            "e2e_10k_p95_ms": 30,
            "ann_1m_p95_ms": 50,
            "ann_1m_recall_at_10": 0.95,
        },
    }
    try:
        if not args.skip_ann:
            sizes = [int(s) for s in args.sizes.split(",") if s]
            report["ann"] = ann_benchmark(sizes, args.dim, args.queries, 10, cache, args.flat_max)
        else:
            report["ann"] = previous.get("ann", [])
        if not args.skip_e2e:
            report["end_to_end"] = e2e_benchmark(args.e2e_tracks, args.repeats, cache)
        else:
            report["end_to_end"] = previous.get("end_to_end")
    finally:
        if not args.cache:
            shutil.rmtree(cache, ignore_errors=True)
    report["machine"]["load_average_at_end"] = os.getloadavg()
    print_summary(report)
    print()
    write_results(out, report, indent=1)
    return 0


def print_summary(report: dict) -> None:
    rows = report.get("ann") or []
    if rows:
        print("\nbest setting per size and kind (recall@10 >= 0.95 if any, else highest recall):")
        print(
            f"{'n':>9} {'kind':6} {'knobs':24} {'build s':>8} {'MB':>7} {'p50 ms':>7} "
            f"{'p95 ms':>7} {'recall':>7}"
        )
        keyed: dict[tuple, list[dict]] = {}
        for row in rows:
            keyed.setdefault((row["n"], row["kind"]), []).append(row)
        for (n, kind), group in keyed.items():
            good = [r for r in group if r["recall_at_10"] >= 0.95]
            best = (
                min(good, key=lambda r: r["p95_ms"])
                if good
                else max(group, key=lambda r: r["recall_at_10"])
            )
            knobs = " ".join(
                f"{k}={best[k]}" for k in ("ef_search", "nprobe", "rerank") if k in best
            )
            print(
                f"{n:>9,} {kind:6} {knobs:24} {best['build_s']:8.1f} {best['index_mb']:7.1f} "
                f"{best['p50_ms']:7.2f} {best['p95_ms']:7.2f} {best['recall_at_10']:7.3f}"
            )
    e2e = report.get("end_to_end")
    if e2e:
        print(
            f"\nend to end at {e2e['n']:,} tracks: search p95 {e2e['search']['p95_ms']} ms wall,"
            f" {e2e['search']['cpu_p95_ms']} ms CPU (target 30); filtered p95"
            f" {e2e['search_filtered']['p95_ms']} ms wall, {e2e['search_filtered']['cpu_p95_ms']}"
            " ms CPU"
        )


if __name__ == "__main__":
    sys.exit(main())
