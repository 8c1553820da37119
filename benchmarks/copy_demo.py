"""Copy a SQLite catalog (the demo library) into PostgreSQL + pgvector and compare searches.

Starts the tests' PostgreSQL (pgserver's 16.2 + pgvector 0.6.2) in a temporary folder,
runs ``musicbert copy-catalog`` from the given SQLite catalog into it, then asks both
catalogs the same text searches (plain and filtered) and "similar to" questions with
the real MusicBERT embedder, and prints whether the answers (tracks and order) agree.

    .venv/bin/python benchmarks/copy_demo.py sqlite:////path/to/demo/catalog.db

Writes benchmarks/results/copy_demo.json. Exits 1 when an answer differs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.cli import main as cli_main  # noqa: E402
from catalog.db import open_catalog  # noqa: E402
from catalog.filters import SearchFilters  # noqa: E402
from catalog.search import SearchEngine  # noqa: E402
from tests.pg_server import start_server, stop_server  # noqa: E402

SEARCHES = [
    ("calm piano", None),
    ("upbeat electronic dance music", None),
    ("orchestral film score", None),
    ("battle music with drums", None),
    ("sad slow strings", None),
    ("organ chorale", None),
    ("something energetic", SearchFilters(artist="Maxstack")),
    ("calm", SearchFilters(duration_max=240)),
    ("fast", SearchFilters(tempo_min=120)),
    ("music in a minor key", SearchFilters(mode="minor")),
]


def answers(url: str, embedder) -> dict:
    out = {}
    with open_catalog(url) as catalog:
        engine = SearchEngine(catalog, embedder)
        for text, filters in SEARCHES:
            hits = engine.search(text, k=10, filters=filters)
            out[f"{text} | {filters.describe() if filters else '-'}"] = [h.title for h in hits]
        for title in ("Knolls", "Wanderer"):
            try:
                out[f"similar {title}"] = [h.title for h in engine.similar(title, k=10)]
            except Exception as exc:  # a library without that track
                out[f"similar {title}"] = repr(exc)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="SQLite URL of the catalog to copy")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "copy_demo.json"))
    args = parser.parse_args()
    from musicbert.embedder import Embedder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        embedder = Embedder.load()
    server = start_server()
    try:
        server.sql("CREATE DATABASE demo")
        target = server.url("demo")
        start = time.perf_counter()
        assert cli_main(["--db", args.source, "copy-catalog", target]) == 0
        copy_s = time.perf_counter() - start
        source_answers, copy_answers = answers(args.source, embedder), answers(target, embedder)
    finally:
        stop_server(server)
    same = {q: source_answers[q] == copy_answers[q] for q in source_answers}
    for query, ok in same.items():
        print(f"  {'same' if ok else 'DIFFERENT':9s} {query}: {source_answers[query][:3]}")
        if not ok:
            print(f"            copy: {copy_answers[query][:10]}")
    print(f"copy took {copy_s:.1f} s; {sum(same.values())} of {len(same)} answers identical")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps({"copy_s": copy_s, "same": same, "sqlite": source_answers, "pg": copy_answers})
    )
    return 0 if all(same.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
