"""``musicbert demo``: build the freely licensed demo library and print its statistics."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="build the demo library (Wesnoth + Endgame: Singularity soundtracks, "
        "music21 scores rendered with FluidSynth)",
        description="Renders the music21 corpus pieces (cached), ingests them with the "
        "wesnoth-1.16-music and singularity-music packages, then prints library stats. "
        "A second run reuses everything that is unchanged.",
    )
    parser.add_argument("--no-embed", action="store_true", help="skip the MusicBERT embedding")
    parser.add_argument("--workers", type=int, default=None, help="analysis processes")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from assistant.background import demo_lock
    from assistant.commands import writable_catalog
    from catalog.ingest_progress import IngestProgress, running_ingest

    with writable_catalog(args, "build the demo library") as catalog:
        with demo_lock(catalog) as mine:
            if not mine or running_ingest(catalog) is not None:
                print(
                    "musicbert: a demo build or an ingest of this library is already running; "
                    "the toolbar of `musicbert chat` shows how far it is",
                    file=sys.stderr,
                )
                return 1
            with IngestProgress(catalog) as note:  # readers see the build from its start
                note.update(force=True, stage="loading the model")
                summary, stats = _build(args, catalog, note)
    if args.json:
        out = summary.to_dict()
        out["stats"] = stats
        print(json.dumps(out, indent=2, ensure_ascii=False, default=str))
        return 0
    print(f"rendered {summary.rendered} score(s), reused {summary.cached} cached render(s)")
    for ref, reason in summary.render_failed:
        print(f"not rendered {ref}: {reason}")
    for line in summary.missing_sources:
        print(f"missing source: {line}")
    for line in summary.ingest.lines() if summary.ingest else []:
        print(line)
    for folder, count in summary.sources.items():
        print(f"{count:4d} tracks from {folder}")
    from assistant.commands.stats import render

    print(render(stats))
    return 0


def _build(args: argparse.Namespace, catalog, note):
    from assistant.commands.ingest import sync_vector_index
    from assistant.model_loader import load_embedder
    from catalog.demo import build_demo_library
    from catalog.queries import library_stats

    embedder = None if args.no_embed else load_embedder(args.checkpoint, catalog)
    summary = build_demo_library(
        catalog, embedder, workers=args.workers, progress=not args.json, note=note
    )
    if embedder is not None:
        sync_vector_index(catalog, embedder)
    return summary, library_stats(catalog)
