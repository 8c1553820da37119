"""``musicbert copy-catalog TARGET``: copy the catalog (vectors included) into another database.

Thin: ``catalog.copy.copy_catalog`` does the work; run it again to resume.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "copy-catalog",
        help="copy the catalog, vectors included, into another database (resumable)",
        description=(
            "Copy every track, tag, analysis, embedding, playlist and play of the catalog "
            "(--db, MUSICBERT_DB or the default SQLite file) into TARGET, an empty database "
            "such as postgresql+psycopg2://user@host/dbname. Ids are kept; each batch is "
            "one transaction; run the same command again to resume an interrupted copy. "
            "On PostgreSQL the vectors go into pgvector and each model's HNSW index is built."
        ),
    )
    parser.add_argument("target", help="SQLAlchemy URL of the database to copy into")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from catalog.copy import copy_catalog
    from catalog.db import open_catalog

    source = open_catalog(args.db)
    try:
        target = open_catalog(args.target)
        try:
            quiet = args.json or not sys.stderr.isatty()

            def progress(table: str, rows: int) -> None:
                print(f"\r{table}: {rows} rows", end="", file=sys.stderr, flush=True)

            report = copy_catalog(source, target, progress=None if quiet else progress)
            if not quiet:
                print(file=sys.stderr)
        finally:
            target.close()
    finally:
        source.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    verb = "resumed the copy of" if report.resumed else "copied"
    counts = ", ".join(f"{n} {t}" for t, n in report.copied.items() if n)
    print(f"{verb} {report.source} into {report.target}: {counts or 'nothing new'}")
    for line in report.indexes:
        print(f"  index {line}")
    return 0
