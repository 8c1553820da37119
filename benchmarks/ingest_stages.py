"""What each ingest stage costs per minute of audio, and the ingest speed it allows.

Runs every step of an ingest alone, in this one process, over a few files of each demo
folder (the Wesnoth and Singularity soundtracks, the rendered scores when cached):

- facts: tags (mutagen) and the header (probe): stage 1;
- decode + resample to 16 kHz mono (soundfile + soxr), once per decoding stage;
- embedding (stage 2): log-mel, the MSD and MTT musicnn taggers (each timed by hooks on
  its forward pass) and the MusicBERT Transformer over the patch vectors;
- analysis (stage 3): loudness (BS.1770 meter, RMS, peak) and key + tempo (one shared
  STFT, chroma and onset envelope);
- SQL: the three stages' rows of every file written to a temporary SQLite catalog.

CPU seconds count every thread of the process, so they hold on a machine shared with
other work better than wall time does; the load average is printed and stored beside
them. An ingest decodes twice (stage 2 in the parent, stage 3 in the workers), so the
total counts decoding twice; "x real time on 2 cores" is 120 s over that total (the
bound when both cores do nothing else).

Usage: .venv/bin/python benchmarks/ingest_stages.py [--per-folder 2] [--threads 1]
Writes benchmarks/results/ingest_stages.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from report import write_results

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "ingest_stages.json"

#: (row name, stage it belongs to, how many times an ingest does it per track)
ROWS = [
    ("tags", "1 facts", 1),
    ("probe", "1 facts", 1),
    ("decode + resample", "2+3 (twice)", 2),
    ("log-mel", "2 embedding", 1),
    ("MSD musicnn", "2 embedding", 1),
    ("MTT musicnn", "2 embedding", 1),
    ("MusicBERT", "2 embedding", 1),
    ("embedding other", "2 embedding", 1),
    ("loudness", "3 analysis", 1),
    ("key + tempo", "3 analysis", 1),
    ("SQL", "1-3 writes", 1),
]


class Clock:
    """CPU and wall seconds per named step, summed over files."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = defaultdict(float)
        self.wall: dict[str, float] = defaultdict(float)

    def time(self, name: str, fn):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        self.wall[name] += time.perf_counter() - wall
        self.cpu[name] += time.process_time() - cpu
        return out


def hook_models(embedder, clock: Clock) -> None:
    """Time each musicnn forward pass (torch or ONNX Runtime) and each MusicBERT window,
    inside describe_stream."""
    import torch

    tagger = embedder.tagger

    def run(patches, names):
        with torch.inference_mode():
            return {
                name: clock.time(
                    f"{name.split('_')[0]} musicnn", lambda n=name: tagger.runner(n)(patches)
                )
                for name in names
            }

    tagger.run = run
    window = embedder.audio_window_embedding

    def timed_window(*args, **kwargs):
        return clock.time("MusicBERT", lambda: window(*args, **kwargs))

    embedder.audio_window_embedding = timed_window


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


def measure(files: list[Path], embedder, clock: Clock) -> float:
    """Run every step on every file; returns the audio seconds."""
    import numpy as np

    from catalog.analysis import SR, analyse_blocks
    from catalog.analysis.loudness import LoudnessMeter
    from catalog.db import open_catalog
    from catalog.ingest_workers import facts_job
    from catalog.ingest_write import write_analysis, write_embedding, write_facts
    from catalog.tags import read_tags
    from musicbert.audio_io import probe, stream
    from musicbert.logmel import logmel_stream

    audio = 0.0
    tmp = tempfile.TemporaryDirectory()
    catalog = open_catalog(f"sqlite:///{tmp.name}/stages.db")
    for path in files:
        name = str(path)
        clock.time("tags", lambda p=name: read_tags(p))
        clock.time("probe", lambda p=name: probe(p))
        blocks = clock.time("decode + resample", lambda p=name: list(stream(p, SR, 30.0)))
        audio += sum(b.size for b in blocks) / SR
        clock.time("log-mel", lambda b=blocks: sum(f.size for f in logmel_stream(iter(b))))
        before = sum(clock.cpu[k] for k in ("MSD musicnn", "MTT musicnn", "MusicBERT"))
        wall0 = sum(clock.wall[k] for k in ("MSD musicnn", "MTT musicnn", "MusicBERT"))
        desc = clock.time("embedding", lambda b=blocks: embedder.describe_stream(iter(b)))
        inner = sum(clock.cpu[k] for k in ("MSD musicnn", "MTT musicnn", "MusicBERT")) - before
        inner_wall = sum(clock.wall[k] for k in ("MSD musicnn", "MTT musicnn", "MusicBERT"))
        clock.cpu["_inner"] += inner
        clock.wall["_inner"] += inner_wall - wall0

        def loudness(b=blocks):
            meter = LoudnessMeter(SR)
            for block in b:
                float(np.dot(block.astype(np.float64), block))
                float(np.max(np.abs(block)))
                meter.update(block)
            return meter.integrated()

        clock.time("loudness", loudness)
        analysis = clock.time("analysis", lambda b=blocks: analyse_blocks(iter(b)))
        facts, features = facts_job(name), analysis.to_dict()

        def write(f=facts, d=desc, a=features, p=name):
            with catalog.session() as session:
                track = write_facts(session, f, p, "0" * 64, 1, None, None)
                tid = track.id
            with catalog.session() as session:
                write_embedding(session, tid, "bench", d.embedding, [("rock", "genre", 0.5)], 1.0)
            with catalog.session() as session:
                write_analysis(session, tid, a)

        clock.time("SQL", write)
    catalog.close()
    tmp.cleanup()
    for kind in (clock.cpu, clock.wall):
        kind["embedding other"] = kind["embedding"] - kind["_inner"] - kind["log-mel"]
        kind["key + tempo"] = kind["analysis"] - kind["loudness"]
    return audio


def check_against_torch(files: list[Path]) -> dict:
    """Whole-track embeddings and top tags of the ONNX Runtime path against torch's."""
    import warnings

    import numpy as np

    from musicbert.embedder import Embedder
    from musicbert.musicnn_onnx import BACKEND_ENV

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = Embedder.load()
        os.environ[BACKEND_ENV] = "torch"
        try:
            plain = Embedder.load()
            plain.tagger.runner("MSD_musicnn")  # decided now, while the variable is set
            plain.tagger.runner("MTT_musicnn")
        finally:
            os.environ.pop(BACKEND_ENV)
    cosines, same_top5, tag_diff = [], [], []
    for path in files:
        a, b = fast.describe(str(path)), plain.describe(str(path))
        cosines.append(float(np.dot(a.embedding, b.embedding)))
        top = [{t.name for t in d.tags[:5]} for d in (a, b)]
        same_top5.append(top[0] == top[1])
        tag_diff.append(
            max(float(np.abs(a.tag_probs[k] - b.tag_probs[k]).max()) for k in a.tag_probs)
        )
    return {
        "embedding_cosine_min": round(min(cosines), 7),
        "top5_tags_identical": f"{sum(same_top5)}/{len(files)}",
        "tag_probability_max_abs_diff": float(f"{max(tag_diff):.2e}"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-folder", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: per core)")
    parser.add_argument(
        "--check-torch",
        action="store_true",
        help="also embed with torch's musicnn and compare (embedding cosine, top tags)",
    )
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    import warnings

    from musicbert.embedder import Embedder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        embedder = Embedder.load()
    files = sample(args.per_folder)
    if not files:
        print("no demo audio found (install wesnoth-1.16-music / singularity-music)")
        return 1
    clock = Clock()
    load_before = os.getloadavg()
    measure(files[:1], embedder, Clock())  # warm-up: filterbanks, oneDNN kernels
    hook_models(embedder, clock)
    audio = measure(files, embedder, clock)
    minutes = audio / 60
    rows = {}
    total = 0.0
    for name, stage, times in ROWS:
        cpu = clock.cpu[name] / minutes
        total += cpu * times
        rows[name] = {
            "stage": stage,
            "cpu_s_per_audio_min": round(cpu, 4),
            "wall_s_per_audio_min": round(clock.wall[name] / minutes, 4),
            "times_per_track": times,
        }
    for row in rows.values():
        row["share"] = round(row["cpu_s_per_audio_min"] * row["times_per_track"] / total, 3)
    stages = defaultdict(float)
    for name, stage, times in ROWS:
        stages[stage] += rows[name]["cpu_s_per_audio_min"] * times
    result = {
        "files": [str(f) for f in files],
        "audio_minutes": round(minutes, 2),
        "torch_threads": args.threads,
        "device": str(embedder.device),
        "model_id": str(embedder.model_id),
        "musicnn_backend": type(embedder.tagger.runner("MSD_musicnn")).__name__,
        "rows": rows,
        "stages_cpu_s_per_audio_min": {k: round(v, 4) for k, v in stages.items()},
        "total_cpu_s_per_audio_min": round(total, 4),
        "x_real_time_per_core": round(60 / total, 1),
        "x_real_time_on_2_cores_if_cpu_bound": round(120 / total, 1),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }
    print(f"{len(files)} files, {minutes:.1f} min of audio, torch threads {args.threads}")
    print(f"{'step':18} {'stage':12} {'CPU s/audio min':>16} {'wall s/audio min':>17} {'share':>6}")
    for name, row in rows.items():
        times = f" x{row['times_per_track']}" if row["times_per_track"] > 1 else ""
        print(
            f"{name:18} {row['stage']:12} {row['cpu_s_per_audio_min']:16.4f}"
            f" {row['wall_s_per_audio_min']:17.4f} {row['share']:6.1%}{times}"
        )
    print(
        f"total {total:.3f} CPU s per audio minute: {result['x_real_time_per_core']}x real time "
        f"per core, {result['x_real_time_on_2_cores_if_cpu_bound']}x on 2 cores if CPU-bound"
    )
    if args.check_torch:
        result["onnx_vs_torch"] = check_against_torch(files)
        print(f"ONNX Runtime vs torch musicnn on these files: {result['onnx_vs_torch']}")
    print(f"load average before {load_before}, after {result['load_average_after']}")
    write_results(RESULTS, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
