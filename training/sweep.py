"""Every objective over several seeds: the runs behind the evaluation table.

Each run is what ``musicbert train --config C --seed S --out RUNS/<name>_s<S> --resume``
does; the runs are shared among ``jobs`` worker processes, each running its runs
one after the other in-process (imports and the cache load happen once).

Run: ``musicbert sweep --runs DIR --seeds 0 1 2 --jobs 2``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
OBJECTIVES = ("mlm", "mim", "tags", "combined", "mim_concepts", "combined_concepts")


def shares(runs: Path, seeds: list[int], objectives: list[str], jobs: int) -> list[list[str]]:
    """The unfinished runs ("name:seed") dealt to ``jobs`` workers, empty shares dropped.

    Dealt in a snake (0,1,1,0,...): text objectives cost more than audio-only ones,
    and a plain round-robin would give one worker every mim and combined run.
    """
    todo = [
        f"{name}:{seed}"
        for seed in seeds
        for name in objectives
        if not (runs / f"{name}_s{seed}" / "final" / "model.safetensors").is_file()
    ]
    dealt: list[list[str]] = [[] for _ in range(jobs)]
    for k, run in enumerate(todo):
        lap, pos = divmod(k, jobs)
        dealt[pos if lap % 2 == 0 else jobs - 1 - pos].append(run)
    return [s for s in dealt if s]


def sweep(
    runs: Path,
    seeds: list[int],
    objectives: list[str],
    jobs: int = 2,
    cache: str | None = None,
    steps: int | None = None,
    threads: int = 1,
) -> bool:
    """Run every unfinished (objective, seed) in ``jobs`` worker processes (each a
    ``musicbert sweep --worker`` with ``threads`` torch threads; its log is
    ``runs/worker<i>.log``); True when every worker succeeded."""
    base = [sys.executable, "-m", "assistant.cli", "sweep", "--runs", str(runs)]
    base += ["--threads", str(threads)]
    if cache:
        base += ["--cache", cache]
    if steps:
        base += ["--steps", str(steps)]
    runs.mkdir(parents=True, exist_ok=True)
    procs = []
    for i, share in enumerate(shares(runs, seeds, objectives, jobs)):
        with (runs / f"worker{i}.log").open("w") as log:
            procs.append(
                subprocess.Popen(base + ["--worker", *share], stdout=log, stderr=subprocess.STDOUT)
            )
    return all(p.wait() == 0 for p in procs)


def run_share(
    specs: list[str], runs: Path, cache: str | None = None, steps: int | None = None
) -> None:
    """Train each "name:seed" of ``specs`` in this process, resuming where a run stopped."""
    from training.pretrain import TrainConfig, train

    for spec in specs:
        name, seed = spec.split(":")
        out = runs / f"{name}_s{seed}"
        config = TrainConfig.from_file(
            CONFIG_DIR / f"{name}.json", seed=int(seed), out=str(out), cache=cache, steps=steps
        )
        train(config, resume=True, progress=False)
        print(f"{name}_s{seed}: done", flush=True)
