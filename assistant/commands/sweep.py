"""``musicbert sweep``: every objective over several seeds, in worker processes.

Thin: the work is ``training.sweep``; heavy imports happen inside ``run``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    from training.sweep import OBJECTIVES  # standard library only: start-up stays fast

    parser = subparsers.add_parser(
        "sweep",
        help="train every objective over several seeds (the runs behind musicbert evaluate)",
        description="Train each (objective, seed) not finished yet under RUNS/<name>_s<seed>, "
        "shared among worker processes.",
    )
    parser.add_argument("--runs", type=Path, required=True, help="directory of the runs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--objectives", nargs="+", default=list(OBJECTIVES))
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--cache", default=None, help="override every config's feature cache")
    parser.add_argument("--steps", type=int, default=None, help="override every config")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--worker", nargs="*", default=None, help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from musicbert.errors import MusicBertError
    from training.sweep import run_share, sweep

    if args.worker is not None:  # one worker process: its share of the runs, in-process
        import torch

        torch.set_num_threads(args.threads)
        run_share(args.worker, args.runs, args.cache, args.steps)
        return 0
    if not sweep(
        args.runs, args.seeds, args.objectives, args.jobs, args.cache, args.steps, args.threads
    ):
        raise MusicBertError(f"a sweep worker failed; see {args.runs}/worker*.log")
    print(f"every run is finished under {args.runs}")
    return 0
