"""What each ingest stage costs per minute of audio: tags, decoding, analysis, embedding.

Runs each stage alone, in this one process, over a few files of each demo folder
(the Wesnoth and Singularity soundtracks, the rendered scores when cached), and
reports CPU seconds and wall seconds per minute of audio. CPU seconds count every
thread of the process, so they hold on a machine shared with other work better than
wall time does. Embedding is ``Embedder.describe_stream`` (musicnn patches, the
shared Transformer and the tags) and includes its own decoding, which is also
given alone so it can be subtracted.

Usage: .venv/bin/python benchmarks/ingest_stages.py [--per-folder 2] [--threads 1]
Writes benchmarks/results/ingest_stages.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from report import write_results

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def sample(per_folder: int) -> list[Path]:
    from catalog.demo import SINGULARITY_DIR, WESNOTH_DIR, render_dir
    from catalog.ingest import scan

    files: list[Path] = []
    for folder in (WESNOTH_DIR, SINGULARITY_DIR, render_dir()):
        if folder.is_dir():
            found = scan([folder])[0]
            step = max(1, len(found) // per_folder)
            files += [Path(f) for f in found[::step][:per_folder]]
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-folder", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: per core)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from catalog.analysis import SR, analyse_blocks
    from catalog.tags import read_tags
    from musicbert.audio_io import DecodeReport, stream
    from musicbert.embedder import Embedder

    embedder = Embedder.load()
    files = sample(args.per_folder)
    if not files:
        print("no demo audio found (install wesnoth-1.16-music / singularity-music)")
        return 1
    totals = {s: [0.0, 0.0] for s in ("tags", "decode", "analysis", "embedding")}
    audio_s = 0.0
    for path in files:
        name_ = str(path)
        steps = {
            "tags": lambda p=name_: read_tags(p),
            "decode": lambda p=name_: sum(b.size for b in stream(p, SR, block_seconds=30.0)),
            "analysis": lambda p=name_: analyse_blocks(stream(p, SR, block_seconds=30.0)),
            "embedding": lambda p=name_: embedder.describe_stream(stream(p, report=DecodeReport())),
        }
        for name, fn in steps.items():
            wall, cpu = timed(fn)
            totals[name][0] += wall
            totals[name][1] += cpu
        audio_s += analyse_blocks(stream(str(path), SR, block_seconds=30.0)).duration
    minutes = audio_s / 60
    rows = {}
    for name, (wall, cpu) in totals.items():
        if name in ("analysis", "embedding"):  # each decodes on its own: count it once
            wall, cpu = wall - totals["decode"][0], cpu - totals["decode"][1]
        rows[name] = {
            "cpu_s_per_audio_min": round(cpu / minutes, 3),
            "wall_s_per_audio_min": round(wall / minutes, 3),
            "x_real_time_per_core": round(60 / (cpu / minutes), 1) if cpu > 0 else None,
        }
    whole = sum(totals[s][1] for s in totals) - totals["decode"][1]  # decoded twice above
    result = {
        "files": [str(f) for f in files],
        "audio_minutes": round(minutes, 2),
        "torch_threads": args.threads,
        "device": str(embedder.device),
        "stages": rows,
        "all_stages_cpu_s_per_audio_min": round(whole / minutes, 3),
        "x_real_time_on_2_cores_if_cpu_bound": round(2 * 60 / (whole / minutes), 1),
        "load_average": os.getloadavg(),
    }
    print(f"{len(files)} files, {minutes:.1f} min of audio, torch threads {args.threads}")
    print(f"{'stage':12} {'CPU s / audio min':>18} {'wall s / audio min':>19} {'x real time':>12}")
    for name, row in rows.items():
        print(
            f"{name:12} {row['cpu_s_per_audio_min']:18.3f} {row['wall_s_per_audio_min']:19.3f}"
            f" {row['x_real_time_per_core']!s:>12}"
        )
    print(
        f"all stages: {result['all_stages_cpu_s_per_audio_min']} CPU s per audio minute, "
        f"{result['x_real_time_on_2_cores_if_cpu_bound']}x real time on 2 cores if CPU-bound"
    )
    print(f"load average {result['load_average']}")
    write_results(ROOT / "benchmarks" / "results" / "ingest_stages.json", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
