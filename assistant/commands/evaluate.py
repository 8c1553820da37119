"""``musicbert evaluate``: the Table 1 protocol (probes, track ID, text-to-music retrieval).

Thin: the work is ``training.evaluate``; heavy imports happen inside ``run``.
"""

from __future__ import annotations

import argparse
import json
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
    from training.evaluate import evaluate, markdown_table

    try:
        result = evaluate(args.cache.expanduser(), args.runs.expanduser(), args.split)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    table = markdown_table(result)
    if args.markdown:
        args.markdown.write_text(table)
    print(json.dumps(result) if args.json else table)
    return 0
