"""``musicbert ingest PATH...``: add or refresh audio files in the catalog."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="scan folders/files, analyse new or changed audio, update the catalog",
        description="Recursively scan PATHs; unchanged files are skipped by content hash, "
        "moved files keep their track, changed files are re-analysed. Safe to interrupt.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    parser.add_argument("--no-embed", action="store_true", help="skip the MusicBERT embedding")
    parser.add_argument(
        "--workers", type=int, default=None, help="analysis processes (default: cores)"
    )
    parser.add_argument("--batch-size", type=int, default=16, help="tracks per transaction")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=run)


def sync_vector_index(catalog, embedder) -> None:
    """Bring the search index in step with what was just ingested."""
    from catalog.vector_index import VectorIndex

    index = VectorIndex.open(catalog, str(embedder.model_id), embedder.dim)
    print(f"musicbert: {index.message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from assistant.model_loader import load_embedder
    from catalog.db import open_catalog
    from catalog.ingest import ingest, require_writable

    catalog = open_catalog(args.db)
    try:
        require_writable(catalog, "ingest")  # before minutes of model loading
        embedder = None if args.no_embed else load_embedder(args.checkpoint, catalog)
        summary = ingest(
            catalog,
            args.paths,
            embedder=embedder,
            workers=args.workers,
            progress=not args.json,
            batch_size=max(1, args.batch_size),
        )
        if embedder is not None:
            sync_vector_index(catalog, embedder)
    finally:
        catalog.close()
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
    else:
        for line in summary.lines():
            print(line)
    return 0
