"""``musicbert train --config FILE``: pretrain MusicBERT from a cached feature set.

Thin: the loop is ``training.pretrain.train``; heavy imports happen inside ``run``.
"""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="pretrain MusicBERT (objectives and weights from a config file)",
        description="Pretrain the shared Transformer from a feature cache "
        "(musicbert features builds it).",
    )
    parser.add_argument("--config", required=True, help="training config (.json or .yml)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    parser.add_argument("--seed", type=int, default=None, help="override the config's seed")
    parser.add_argument("--out", default=None, help="override the run directory")
    parser.add_argument("--cache", default=None, help="override the feature cache directory")
    parser.add_argument("--steps", type=int, default=None, help="override the number of steps")
    parser.add_argument(
        "--device-batches",
        choices=("on", "off"),
        default=None,
        help="build batches on the training device (default: on CUDA only)",
    )
    parser.add_argument("--json", action="store_true", help="print the run summary as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from training.pretrain import TrainConfig, train

    config = TrainConfig.from_file(
        args.config,
        seed=args.seed,
        out=args.out,
        cache=args.cache,
        steps=args.steps,
        device_batches=None if args.device_batches is None else args.device_batches == "on",
    )
    final = train(config, resume=args.resume)
    summary_file = final.parent / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    summary["final"] = str(final)
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"trained {config.name}: {summary.get('steps')} steps in "
            f"{summary.get('wall_s', 0):.0f} s; final checkpoint {final}"
        )
    return 0
