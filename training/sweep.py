"""Every objective over several seeds: the runs behind the evaluation table.

Each run is what ``python -m training.pretrain --config C --seed S --out RUNS/<name>_s<S>
--resume`` does; the runs are shared among ``--jobs`` worker processes, each running
its runs one after the other in-process (imports and the cache load happen once).

Run: ``python -m training.sweep --runs DIR --seeds 0 1 2 --jobs 2``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
OBJECTIVES = ("mlm", "mim", "tags", "combined", "mim_concepts", "combined_concepts")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--objectives", nargs="+", default=list(OBJECTIVES))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cache", default=None)
    parser.add_argument("--steps", type=int, default=None, help="override every config")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--worker", nargs="*", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv) if argv is not None else parser.parse_args()
    if args.worker is not None:
        return _work(args)
    todo = [
        f"{name}:{seed}"
        for seed in args.seeds
        for name in args.objectives
        if not (args.runs / f"{name}_s{seed}" / "final" / "model.safetensors").is_file()
    ]
    # dealt in a snake (0,1,1,0,...): text objectives cost more than audio-only ones,
    # and a plain round-robin would give one worker every mim and combined run
    shares: list[list[str]] = [[] for _ in range(args.jobs)]
    for k, run in enumerate(todo):
        lap, pos = divmod(k, args.jobs)
        shares[pos if lap % 2 == 0 else args.jobs - 1 - pos].append(run)
    base = [
        sys.executable,
        "-m",
        "training.sweep",
        "--runs",
        str(args.runs),
        "--threads",
        str(args.threads),
    ]
    if args.cache:
        base += ["--cache", args.cache]
    if args.steps:
        base += ["--steps", str(args.steps)]
    args.runs.mkdir(parents=True, exist_ok=True)
    procs = []
    for i, share in enumerate(s for s in shares if s):
        log = (args.runs / f"worker{i}.log").open("w")
        procs.append(
            subprocess.Popen(base + ["--worker", *share], stdout=log, stderr=subprocess.STDOUT)
        )
    codes = [p.wait() for p in procs]
    return 0 if all(c == 0 for c in codes) else 1


def _work(args) -> int:
    import torch

    from training.pretrain import TrainConfig, train

    torch.set_num_threads(args.threads)
    for spec in args.worker:
        name, seed = spec.split(":")
        out = args.runs / f"{name}_s{seed}"
        config = TrainConfig.from_file(
            CONFIG_DIR / f"{name}.json",
            seed=int(seed),
            out=str(out),
            cache=args.cache,
            steps=args.steps,
        )
        train(config, resume=True, progress=False)
        print(f"{name}_s{seed}: done", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
