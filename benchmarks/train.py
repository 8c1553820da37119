"""Pretraining throughput: samples/s of the training step, host batches against device batches.

The step is the loop's own (``training.pretrain.train_step``: forward under the
loop's autocast, backward, clipping, AdamW, schedule, dropout reseeded per step),
fed by (a) ``Batcher`` (numpy on the host, then copied) or (b) ``DeviceBatcher``
(the cache on the device, batches gathered there). For each model size (the
default: training/configs/mim.json, and a larger one, 6 layers x 512 wide) and
batch size: warm-up steps first (not timed), then timing windows of about
``--window-s`` seconds each, synchronised only at their ends; the table shows the
median window's samples/s, and, apart, what the batcher alone delivers and (with
device batches) what the step alone does on one ready batch (the ceiling).

The cache is synthetic but shaped like the real one (3,000 items of 5-10 patches,
6,000 texts of 8-30 tokens, two per item) unless ``--cache`` names a real one.
Target: >= 50,000 samples/s for the default model with device batches, batch 64
or larger, on one H100/H200. On CPU the defaults are small (batch 64 and 256,
the large model at 64 only). Writes benchmarks/results/train.json.

    .venv/bin/python benchmarks/train.py                       # CPU, about a minute
    python benchmarks/train.py --device cuda --out $OUT/train.json
    python benchmarks/train.py --device cuda --compile default   # also torch.compile rows
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from report import write_results

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "train.json"
TARGET = 50_000  # samples/s, default model, device batches, batch >= 64, one H100/H200
LARGE = {
    "hidden_size": 512,
    "num_hidden_layers": 6,
    "num_attention_heads": 8,
    "intermediate_size": 2048,
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def synthetic_cache(n_items: int, n_texts: int, seed: int = 0):
    """A FeatureCache of realistic shape: fp16 patches and token states, soft tag targets."""
    from training.features import TAG_NAMES, FeatureCache, Item

    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, 11, n_items)
    tokens = rng.integers(8, 31, n_texts)
    per_item = max(1, n_texts // n_items)
    items, offset = [], 0
    for i, n in enumerate(lengths):
        own = [int((i * per_item + k) % n_texts) for k in range(per_item)]
        target = rng.uniform(size=len(TAG_NAMES)).round(4).tolist()
        items.append(Item(f"s{i}", "corpus", "train", {}, offset, int(n), own, own[0], target))
        offset += int(n)
    text_offsets = np.concatenate([[0], np.cumsum(tokens)]).astype(np.int64)
    return FeatureCache(
        items=items,
        patches=rng.standard_normal((offset, 200), np.float32).astype(np.float16),
        tag_probs=rng.uniform(size=(n_items, 100)).astype(np.float16),
        mfcc=np.zeros((n_items, 40), np.float32),
        mfcc_segments={
            "a": np.zeros((n_items, 40), np.float32),
            "b": np.zeros((n_items, 40), np.float32),
        },
        texts=[f"text {t}" for t in range(n_texts)],
        text_offsets=text_offsets,
        text_states=rng.standard_normal((int(text_offsets[-1]), 384), np.float32).astype(
            np.float16
        ),
    )


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _windows(fn, device, batch_size: int, window_s: float, windows: int) -> dict:
    """Median samples/s over ``windows`` windows of about ``window_s`` seconds of ``fn()``."""
    _sync(device)
    start = time.perf_counter()
    fn()
    fn()
    _sync(device)
    per_call = (time.perf_counter() - start) / 2
    calls = max(1, min(1000, math.ceil(window_s / max(per_call, 1e-6))))
    if calls == 1:  # slow (host batches on big batches): fewer windows, same median
        windows = min(windows, 3)
    rates = []
    for _ in range(windows):
        _sync(device)
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        _sync(device)
        rates.append(batch_size * calls / (time.perf_counter() - start))
    return {
        "samples_per_s": round(statistics.median(rates), 1),
        "windows": [round(r, 1) for r in rates],
        "calls_per_window": calls,
        "ms_per_call": round(1000 * batch_size / statistics.median(rates), 3),
    }


def bench_one(cache, ids, base, model_kw, batch_size, batcher_kind, device, args, compile_mode):
    import torch

    from musicbert.modeling_musicbert import MusicBertForPreTraining
    from training.pretrain import (
        TrainConfig,
        autocast_for,
        lr_lambda,
        make_batcher,
        make_optimiser,
        train_step,
    )

    config = TrainConfig(
        name="bench",
        cache="",
        out="",
        objectives=dict(base["objectives"]),
        seed=0,
        steps=10**6,
        batch_size=batch_size,
        lr=float(base.get("lr", 1e-3)),
        warmup_steps=int(base.get("warmup_steps", 50)),
        grad_clip=float(base.get("grad_clip", 1.0)),
        device_batches=batcher_kind == "device",
        model=model_kw,
    )
    n_tags = len(cache.items[ids[0]].tag_target)
    model_config = config.model_config(n_tags)
    torch.manual_seed(0)
    model = MusicBertForPreTraining(model_config).to(device)
    model.train()
    wrapped = model
    if compile_mode:
        wrapped = torch.compile(model, mode=compile_mode)
    optimiser = make_optimiser(model, config, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lr_lambda(config.warmup_steps, config.steps)
    )
    autocast = autocast_for(device)
    batcher = make_batcher(cache, ids, config, model_config.mask_probability, device)
    state = {"step": 0}

    def step() -> None:
        s = state["step"]
        torch.manual_seed(s * 7919)  # as the loop does: dropout a function of the step
        batch = batcher.batch(s).to(device)
        train_step(wrapped, model, batch, config, optimiser, scheduler, autocast)
        state["step"] = s + 1

    def batch_only() -> None:
        s = state["step"]
        batcher.batch(s).to(device)
        state["step"] = s + 1

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(args.warmup):
        step()
    _sync(device)
    warmup_s = time.perf_counter() - start
    row = _windows(step, device, batch_size, args.window_s, args.windows)
    row["warmup_s"] = round(warmup_s, 2)
    row["batches_only"] = _windows(batch_only, device, batch_size, args.window_s / 2, 3)
    if batcher_kind == "device":  # the step on one ready batch: what no batcher can beat
        fixed = batcher.batch(0)

        def model_only() -> None:
            train_step(wrapped, model, fixed, config, optimiser, scheduler, autocast)

        row["model_only"] = _windows(model_only, device, batch_size, args.window_s / 2, 3)
    if device.type == "cuda":
        row["peak_mem_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    row["params_m"] = round(sum(p.numel() for p in model.parameters()) / 1e6, 2)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (cuda if present), cpu, cuda")
    parser.add_argument("--config", default=str(ROOT / "training" / "configs" / "mim.json"))
    parser.add_argument("--cache", default=None, help="a real feature cache (default: synthetic)")
    parser.add_argument("--items", type=int, default=3000, help="synthetic cache items")
    parser.add_argument("--texts", type=int, default=6000, help="synthetic cache texts")
    parser.add_argument("--models", default="default,large", help="default,large")
    parser.add_argument("--batch-sizes", default=None, help="GPU: 64,256,1024; CPU: 64,256")
    parser.add_argument("--batchers", default="host,device", help="host,device")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps (GPU 5, CPU 1)")
    parser.add_argument("--windows", type=int, default=None, help="timing windows (GPU 5, CPU 3)")
    parser.add_argument("--window-s", type=float, default=None, help="GPU 0.5, CPU 0.3")
    parser.add_argument(
        "--compile",
        default=None,
        metavar="MODE",
        help="also time device batches with torch.compile(model, mode=MODE), e.g. default",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    import torch

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: this torch ({torch.__version__}) sees no CUDA GPU")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", 0)
    gpu = device.type == "cuda"
    batch_sizes = [
        int(x) for x in (args.batch_sizes or ("64,256,1024" if gpu else "64,256")).split(",")
    ]
    args.warmup = args.warmup if args.warmup is not None else (5 if gpu else 1)
    args.windows = args.windows if args.windows is not None else (5 if gpu else 3)
    args.window_s = args.window_s if args.window_s is not None else (0.5 if gpu else 0.3)
    if gpu:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    base = json.loads(Path(args.config).read_text())
    models = {"default": dict(base.get("model", {})), "large": {**base.get("model", {}), **LARGE}}
    wanted = [m for m in args.models.split(",") if m]
    for m in wanted:
        if m not in models:
            parser.error(f"--models: unknown model {m!r}; choose from default, large")
    kinds = [k for k in args.batchers.split(",") if k]
    if set(kinds) - {"host", "device"}:
        parser.error("--batchers: choose from host, device")

    from training.features import load_cache

    start = time.perf_counter()
    if args.cache:
        cache = load_cache(Path(args.cache).expanduser())
        ids = cache.indices("train")
        source = str(args.cache)
    else:
        cache = synthetic_cache(args.items, args.texts)
        ids = list(range(len(cache.items)))
        source = "synthetic"
    lengths = [cache.items[i].n_patches for i in ids]
    tokens = np.diff(cache.text_offsets)
    log(
        f"cache ({source}): {len(ids)} training items of {min(lengths)}-{max(lengths)} patches, "
        f"{len(cache.texts)} texts of {tokens.min()}-{tokens.max()} tokens "
        f"({time.perf_counter() - start:.1f} s)"
    )

    results: dict = {
        "machine": {
            "device": torch.cuda.get_device_name(device) if gpu else "cpu",
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "threads": torch.get_num_threads(),
            "load_avg_start": list(os.getloadavg()),
        },
        "cache": {
            "source": source,
            "items": len(ids),
            "patches": [min(lengths), max(lengths)],
            "texts": len(cache.texts),
            "tokens": [int(tokens.min()), int(tokens.max())],
        },
        "objectives": base["objectives"],
        "settings": {
            "warmup_steps": args.warmup,
            "windows": args.windows,
            "window_s": args.window_s,
            "autocast": "bf16" if gpu else None,
        },
        "models": {m: models[m] for m in wanted},
        "rows": [],
    }
    plan = []
    for m in wanted:
        for b in batch_sizes:
            if not gpu and m == "large" and b > 64 and args.batch_sizes is None:
                continue  # minutes per step on a small CPU
            for kind in kinds:
                plan.append((m, b, kind, None))
            if args.compile and "device" in kinds:
                plan.append((m, b, "device", args.compile))
    for n, (m, b, kind, mode) in enumerate(plan, 1):
        label = f"{m:<8} batch {b:>5} {kind:<6}" + (f" compile={mode}" if mode else "")
        log(f"[{n}/{len(plan)}] {label} ...")
        row = {"model": m, "batch_size": b, "batcher": kind, "compile": mode}
        try:
            row.update(bench_one(cache, ids, base, models[m], b, kind, device, args, mode))
        except Exception as exc:  # one failed setting (e.g. compile) must not lose the rest
            row["error"] = f"{type(exc).__name__}: {exc}"[:500]
            log(f"    failed: {row['error']}")
        else:
            model_alone = row.get("model_only", {}).get("samples_per_s")
            log(
                f"    {row['samples_per_s']:>10,.0f} samples/s (step {row['ms_per_call']:.2f} ms; "
                f"batches alone {row['batches_only']['samples_per_s']:,.0f}/s; "
                + ("" if model_alone is None else f"model alone {model_alone:,.0f}/s; ")
                + f"warm-up {row['warmup_s']} s)"
            )
        results["rows"].append(row)
        if gpu:  # the run's model and batcher are gone: hand their memory back
            torch.cuda.empty_cache()
    results["machine"]["load_avg_end"] = list(os.getloadavg())
    results["wall_s"] = round(time.perf_counter() - start, 1)

    ok = [r for r in results["rows"] if "error" not in r]
    best = [
        r["samples_per_s"]
        for r in ok
        if r["model"] == "default" and r["batcher"] == "device" and r["batch_size"] >= 64
    ]
    results["target"] = {
        "samples_per_s": TARGET,
        "best_default_device": max(best) if best else None,
        "met": bool(best) and max(best) >= TARGET,
    }
    machine = results["machine"]
    print(
        f"\nPretraining step on {machine['device']} (torch {machine['torch']}), load avg "
        f"{machine['load_avg_start'][0]:.1f} -> {machine['load_avg_end'][0]:.1f}; "
        f"objectives {results['objectives']}"
    )
    header = f"{'model':<8} {'batch':>6} {'batcher':<8} {'compile':<8} {'samples/s':>11} "
    print(header + f"{'step ms':>9} {'batches only':>13} {'model only':>11} {'x host':>7}")
    host = {(r["model"], r["batch_size"]): r["samples_per_s"] for r in ok if r["batcher"] == "host"}
    for r in results["rows"]:
        lead = f"{r['model']:<8} {r['batch_size']:>6} {r['batcher']:<8} {r['compile'] or '-':<8} "
        if "error" in r:
            print(lead + f"error: {r['error'][:60]}")
            continue
        ref = host.get((r["model"], r["batch_size"]))
        speedup = f"{r['samples_per_s'] / ref:.1f}" if ref and r["batcher"] != "host" else ""
        only = r["batches_only"]["samples_per_s"]
        ceiling = f"{r['model_only']['samples_per_s']:,.0f}" if "model_only" in r else "-"
        print(
            lead + f"{r['samples_per_s']:>11,.0f} {r['ms_per_call']:>9.2f} {only:>13,.0f} "
            f"{ceiling:>11} {speedup:>7}"
        )
    target = results["target"]
    met = ("yes" if target["met"] else "NO") if gpu else "the target is for one H100/H200"
    best_text = (
        "n/a" if target["best_default_device"] is None else f"{target['best_default_device']:,.0f}"
    )
    print(f"target: default model, device batches >= {TARGET:,} samples/s: {best_text} ({met})")
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
