"""``musicbert real-corpus``: the real recordings to learn from (Debian music packages).

Thin: the work is ``training.real_corpus.build_listing``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    from training.real_corpus import PACKAGES  # standard library only: start-up stays fast

    parser = subparsers.add_parser(
        "real-corpus",
        help="fetch and list the real-music training corpus (apt-get download, dpkg -x)",
        description="Fetch freely licensed music packages into a cache folder and list "
        "their tracks (tracks.jsonl), split by package.",
    )
    parser.add_argument("--out", type=Path, required=True, help="cache folder for debs + music")
    parser.add_argument("--packages", nargs="*", default=None, choices=list(PACKAGES))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from training.real_corpus import build_listing

    tracks, listing = build_listing(args.out, args.packages)
    hours = sum(t.duration for t in tracks) / 3600
    by_split = {s: sum(t.split == s for t in tracks) for s in ("train", "dev")}
    print(f"{len(tracks)} tracks, {hours:.1f} h ({by_split}); listing at {listing}")
    return 0
