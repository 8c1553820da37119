"""``musicbert evaluate``: the Table 1 protocol (probes, track ID, text-to-music retrieval).

Thin: the work is ``training.evaluate.report``; heavy imports happen inside ``run``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate MusicBERT runs against MFCC, musicnn and tag-matching baselines",
        description="Frozen-representation probes and retrieval on held-out data.",
    )
    parser.add_argument("--cache", type=Path, required=True, help="feature cache directory")
    parser.add_argument(
        "--runs", type=Path, required=True, help="directory of runs named <objective>_s<seed>"
    )
    parser.add_argument("--split", default="test", choices=("test", "val"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/training_eval.json"))
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    parser.add_argument("--json", action="store_true", help="print the JSON result")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from musicbert.errors import ConfigError
    from training.evaluate import report

    try:
        text = report(args.cache, args.runs, args.split, args.out, args.markdown, args.json)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    print(text)
    return 0
