"""``musicbert reindex``: re-embed tracks whose stored embedding is from another model."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "reindex",
        help="re-embed tracks whose embedding is missing or from a different model "
        "(the packaged one, or --checkpoint)",
        description="Embeds every track lacking a vector from the current MusicBERT model "
        "(its model id). Committed in batches: an interrupted run resumes.",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from assistant.commands import writable_catalog
    from assistant.commands.ingest import sync_vector_index
    from assistant.model_loader import load_embedder
    from catalog.ingest import reindex

    with writable_catalog(args, "re-embed tracks") as catalog:
        embedder = load_embedder(args.checkpoint, catalog, follow_library=False)
        count = reindex(catalog, embedder, progress=not args.json)
        sync_vector_index(catalog, embedder)
    if args.json:
        print(json.dumps({"reembedded": count, "model_id": str(embedder.model_id)}))
    else:
        print(f"re-embedded {count} track(s) with model {embedder.model_id}")
    return 0
