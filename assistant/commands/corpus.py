"""``musicbert corpus``: render music21 scores into the described training clips.

Thin: the work is ``training.corpus.build``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "corpus",
        help="render the training corpus (music21 scores with FluidSynth, with descriptions)",
        description="Render music21 scores into clips with known facts (resumable).",
    )
    parser.add_argument("--out", type=Path, default=None, help="corpus directory")
    parser.add_argument("--limit", type=int, default=2000, help="clips planned at most")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-budget", type=float, default=None, help="seconds, then stop")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from musicbert.paths import cache_dir
    from training.corpus import build

    out = args.out or cache_dir("training", "corpus")
    n = build(out, args.limit, args.workers, args.seed, args.time_budget)
    print(f"rendered {n} clips into {out}")
    return 0
