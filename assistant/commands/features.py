"""``musicbert features``: the training feature cache (musicnn as the embedder runs it, MiniLM).

Thin: the work is ``training.extract.build``; heavy imports happen inside ``run``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def shard(text: str) -> tuple[int, int]:
    """``I/N`` with 0 <= I < N, as an argparse type."""
    try:
        index, count = (int(x) for x in text.split("/"))
        if not 0 <= index < count:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected I/N with 0 <= I < N, e.g. 0/2"
        ) from None
    return index, count


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "features",
        help="build the training feature cache (musicnn patch vectors, tags, MiniLM texts)",
        description="Extract per-item features with the embedder's own musicnn path, then "
        "pack them with the MiniLM token states of every text into DIR/cache.npz.",
    )
    parser.add_argument("--corpus", type=Path, default=None, help="rendered corpus directory")
    parser.add_argument("--out", type=Path, required=True, help="feature cache directory")
    parser.add_argument("--no-recordings", action="store_true")
    parser.add_argument(
        "--catalog", default=None, help="also train on this library's tracks (database URL)"
    )
    parser.add_argument(
        "--real", type=Path, default=None, help="real-music listing (musicbert real-corpus)"
    )
    parser.add_argument(
        "--compact", type=Path, default=None, help="also write a compact copy here (int8 text)"
    )
    parser.add_argument("--extract-only", action="store_true", help="do not pack (yet)")
    parser.add_argument(
        "--shard",
        type=shard,
        default=(0, 1),
        metavar="I/N",
        help="extract every N-th item from the I-th (implies --extract-only; run N of these "
        "side by side, then once without --shard to pack)",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: one per shard)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from training.extract import build

    torch.set_num_threads(args.threads)
    result = build(
        args.out,
        corpus_dir=args.corpus,
        include_recordings=not args.no_recordings,
        shard=args.shard,
        catalog_url=args.catalog,
        real_listing=args.real,
        compact=args.compact,
        extract_only=args.extract_only,
    )
    if args.json:
        print(json.dumps(result))
        return 0
    line = f"extracted {result['extracted']} new items"
    if result["cache"]:
        line += f"; cache at {result['cache']}"
    print(line)
    if result["compact"]:
        print(f"compact copy at {result['compact']}")
    return 0
