"""Ingestion throughput on the demo library, in multiples of real time, stage by stage.

Builds (or reuses) the demo library's renders, then ingests into fresh temporary SQLite
catalogs:

- without an embedder (facts + analysis), with each ``--workers`` count: wall time,
  audio hours, multiples of real time, and peak RSS of the parent and largest worker;
- with the MusicBERT embedder (the whole ingest: facts, embedding, analysis) on
  ``--embed-tracks`` tracks taken one folder in turn (0: the whole library): per stage,
  wall seconds per minute of audio and multiples of real time, and for the whole run.

A second ingest of the same folders (everything unchanged, hashes only) is timed too.
The CPU is shared with other work, so each figure is the median of ``--repeats`` runs,
CPU seconds (parent + workers) are reported beside wall time, and the load average
before and after is stored. Targets: >= 50x real time with embedding and tagging on 2
cores. Writes benchmarks/results/ingest.json.

    .venv/bin/python benchmarks/ingest.py [--repeats 1] [--embed-tracks 24] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from report import write_results

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "ingest.json"


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def library_folders() -> list[Path]:
    from catalog.demo import SINGULARITY_DIR, WESNOTH_DIR, render_dir, render_pieces

    rendered, cached, failed = render_pieces(progress=True)
    print(f"demo renders: {rendered} rendered now, {cached} cached, {len(failed)} failed")
    return [render_dir(), WESNOTH_DIR, SINGULARITY_DIR]


def library_size(folders: list[Path]) -> dict:
    from catalog.ingest import scan
    from musicbert.audio_io import probe

    files, _skipped = scan(folders)
    seconds = sum(probe(f).duration for f in files)
    size = sum(os.path.getsize(f) for f in files)
    return {
        "tracks": len(files),
        "hours": round(seconds / 3600, 3),
        "megabytes": round(size / 1e6, 1),
        "folders": [str(f) for f in folders],
    }


def run_once(folders: list[Path], workers: int, embedder=None, limit: int | None = None) -> dict:
    from catalog.db import open_catalog
    from catalog.ingest import ingest, interleaved, scan

    paths: list = folders
    if limit:
        paths = interleaved(scan(folders)[0])[:limit]
    with tempfile.TemporaryDirectory() as tmp:
        catalog = open_catalog(f"sqlite:///{tmp}/bench.db")
        cpu0, t0 = _cpu_seconds(), time.perf_counter()
        summary = ingest(catalog, paths, embedder=embedder, workers=workers, progress=False)
        wall, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
        t1 = time.perf_counter()
        again = ingest(catalog, paths, embedder=embedder, workers=workers, progress=False)
        rerun = time.perf_counter() - t1
        catalog.close()
    assert again.unchanged == summary.added, "second run should find everything unchanged"
    audio = summary.analysed_seconds
    stages = {}
    for name, figures in summary.stages.items():
        covered = figures["audio_s"] or audio  # the facts stage decodes nothing
        stages[name] = {
            **figures,
            "wall_s_per_audio_min": round(figures["wall_s"] / (covered / 60), 4),
            "x_realtime": round(covered / max(figures["wall_s"], 1e-9), 1),
        }
    return {
        "tracks": summary.added,
        "skipped": len(summary.skipped),
        "audio_hours": round(audio / 3600, 3),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "x_realtime": round(audio / wall, 1),
        "x_realtime_per_cpu_second": round(audio / max(cpu, 1e-9), 1),
        "unchanged_rerun_s": round(rerun, 2),
        "stages": stages,
    }


def median_runs(runs: list[dict]) -> dict:
    best = dict(runs[0])
    for key in ("wall_s", "cpu_s", "x_realtime", "x_realtime_per_cpu_second", "unchanged_rerun_s"):
        best[key] = round(statistics.median(r[key] for r in runs), 2)
    best["runs_wall_s"] = [r["wall_s"] for r in runs]
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--embed-tracks", type=int, default=24, help="0: the whole library")
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 1])
    args = parser.parse_args()

    import catalog.ingest_workers

    catalog.ingest_workers.START_METHOD = "spawn"  # workers as direct children: rusage sees them
    folders = library_folders()
    size = library_size(folders)
    print(f"demo library: {size['tracks']} tracks, {size['hours']} h, {size['megabytes']} MB")
    results: dict = {"library": size, "analysis": {}, "machine": platform.machine()}
    results["cpu_count"] = os.cpu_count()
    results["load_average_before"] = os.getloadavg()
    for workers in args.workers:
        runs = [run_once(folders, workers) for _ in range(args.repeats)]
        results["analysis"][f"{workers}_workers"] = median_runs(runs)
    results["peak_rss_parent_mib"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    results["peak_rss_largest_worker_mib"] = round(
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
    )
    try:
        from musicbert.embedder import Embedder
    except ImportError as exc:
        results["with_embedding"] = f"not measured: {exc}"
    else:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            embedder = Embedder.load()
            run = run_once(folders, 2, embedder=embedder, limit=args.embed_tracks)
        run["model_id"] = str(embedder.model_id)
        results["with_embedding"] = run
        results["peak_rss_parent_with_embedding_mib"] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        )
    results["load_average_after"] = os.getloadavg()
    write_results(RESULTS, results)

    print()
    print(f"{'run':<28}{'tracks':>7}{'audio h':>9}{'wall s':>9}{'x real time':>13}{'x/CPU-s':>9}")
    rows = [(k.replace("_", " "), v) for k, v in results["analysis"].items()]
    if isinstance(results["with_embedding"], dict):
        rows.append(("2 workers + embedding", results["with_embedding"]))
    for name, r in rows:
        print(
            f"{name:<28}{r['tracks']:>7}{r['audio_hours']:>9}{r['wall_s']:>9}"
            f"{r['x_realtime']:>13}{r['x_realtime_per_cpu_second']:>9}"
        )
    if isinstance(results["with_embedding"], dict):
        print(f"\n{'stage (with embedding)':<28}{'tracks':>7}{'wall s':>9}{'s/audio min':>13}"
              f"{'x real time':>13}")  # fmt: skip
        for name, r in results["with_embedding"]["stages"].items():
            print(
                f"{name:<28}{r['tracks']:>7}{r['wall_s']:>9.1f}{r['wall_s_per_audio_min']:>13.3f}"
                f"{r['x_realtime']:>13}"
            )
    print(
        f"peak RSS: parent {results['peak_rss_parent_mib']} MiB, "
        f"largest worker {results['peak_rss_largest_worker_mib']} MiB"
    )
    loads = results["load_average_before"], results["load_average_after"]
    print(f"load average before/after: {loads[0]} / {loads[1]}")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
