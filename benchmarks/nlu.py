"""NLU benchmark: 5-fold cross-validated intent accuracy, entity F1, parse latency.

Usage: .venv/bin/python benchmarks/nlu.py [--folds 5] [--threads 1] [--write-folds DIR]
       [--rasa-results FILE]

The in-process column trains the whole NLU (intent model and the entity
vocabulary learnt from annotations) on four folds of data/nlu.yml and tests on
the fifth. Entity F1 counts an entity right when its type, start and end match
the annotation (value accuracy is reported beside it). Latency is the full
``NLU.parse`` on every example with the model trained on all data.

The Rasa DIET column: ``--write-folds DIR`` writes each fold's train/test files
in Rasa's format (fold_N/train.yml, fold_N/test.yml), which the Rasa runner
trains and tests with Rasa 3.6; it writes a JSON with the same keys as the
in-process column ({"intent_accuracy", "entity_f1", "parse_p50_ms",
"parse_p95_ms", ...}) which ``--rasa-results FILE`` merges into the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from report import write_results  # noqa: E402

from assistant.nlu import NLU, build_extractor  # noqa: E402
from assistant.nlu.intent_classifier import TextEncoder, fit  # noqa: E402
from assistant.nlu.rasa_format import NLUData, annotate, load_nlu  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = {"intent_accuracy": 0.95, "entity_f1": 0.90, "parse_p95_ms": 15.0}


def folds(data: NLUData, k: int, seed: int = 0) -> list[list[int]]:
    """Stratified folds: each intent's examples dealt round-robin after a shuffle."""
    rng = np.random.default_rng(seed)
    out: list[list[int]] = [[] for _ in range(k)]
    by_intent: dict[str, list[int]] = {}
    for i, ex in enumerate(data.examples):
        by_intent.setdefault(ex.intent, []).append(i)
    offset = 0
    for intent in sorted(by_intent):
        idx = by_intent[intent]
        rng.shuffle(idx)
        for j, i in enumerate(idx):
            out[(j + offset) % k].append(i)
        offset += len(idx)
    return out


def build_fold_nlu(train: NLUData, encoder: TextEncoder) -> NLU:
    nlu = NLU(train, encoder, None, build_extractor(train))
    texts = [nlu.training_text(ex.text) for ex in train.examples]
    nlu.model = fit(encoder.embed(texts), [ex.intent for ex in train.examples])
    return nlu


def evaluate_in_process(data: NLUData, k: int, tower) -> dict:
    encoder = TextEncoder(tower, memo_size=100_000)
    parts = folds(data, k)
    correct = total = tp = fp = fn = value_ok = 0
    confusions: dict[str, int] = {}
    per_fold = []
    for f, test_idx in enumerate(parts):
        test_set = set(test_idx)
        train = data.subset([ex for i, ex in enumerate(data.examples) if i not in test_set])
        nlu = build_fold_nlu(train, encoder)
        fold_correct = 0
        for i in test_idx:
            ex = data.examples[i]
            parse = nlu.parse(ex.text)
            ok = parse.intent == ex.intent
            fold_correct += ok
            if not ok:
                key = f"{ex.intent} -> {parse.intent}"
                confusions[key] = confusions.get(key, 0) + 1
            gold = {(e.entity, e.start, e.end): e.value for e in ex.entities}
            got = {(e.entity, e.start, e.end): e.value for e in parse.entities}
            hits = gold.keys() & got.keys()
            tp += len(hits)
            fp += len(got.keys() - gold.keys())
            fn += len(gold.keys() - got.keys())
            value_ok += sum(gold[h].lower() == got[h].lower() for h in hits)
        correct += fold_correct
        total += len(test_idx)
        per_fold.append(round(fold_correct / len(test_idx), 4))
        print(f"  fold {f + 1}/{k}: intent accuracy {per_fold[-1]:.3f}", flush=True)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "intent_accuracy": round(correct / total, 4),
        "intent_accuracy_per_fold": per_fold,
        "entity_precision": round(precision, 4),
        "entity_recall": round(recall, 4),
        "entity_f1": round(f1, 4),
        "entity_value_accuracy": round(value_ok / tp, 4) if tp else 0.0,
        "top_confusions": dict(sorted(confusions.items(), key=lambda kv: -kv[1])[:15]),
    }


def measure_latency(data: NLUData, tower, repeats: int = 2) -> dict:
    """Parse every example (distinct sentences, so the embedding memo does not help)."""
    nlu = NLU.load(tower=tower)
    nlu.encoder = TextEncoder(tower, memo_size=0)
    for ex in data.examples[:20]:
        nlu.parse(ex.text)  # warm-up
    times = []
    for _ in range(repeats):
        for ex in data.examples:
            t0 = time.perf_counter()
            nlu.parse(ex.text)
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {
        "parse_p50_ms": round(statistics.median(times), 2),
        "parse_p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
        "parse_max_ms": round(times[-1], 2),
        "parses_timed": len(times),
    }


def write_folds(data: NLUData, k: int, out_dir: Path) -> None:
    """Rasa-format train/test files per fold, for the DIET column."""
    for f, test_idx in enumerate(folds(data, k)):
        test_set = set(test_idx)
        for name, keep in (("train", False), ("test", True)):
            chosen = [ex for i, ex in enumerate(data.examples) if (i in test_set) == keep]
            lines = ['version: "3.1"', "nlu:"]
            for intent in sorted({ex.intent for ex in chosen}):
                lines += [f"  - intent: {intent}", "    examples: |"]
                lines += [f"      - {annotate(ex)}" for ex in chosen if ex.intent == intent]
            if name == "train":
                for value, surfaces in _group(data.declared_synonyms).items():
                    lines += [f"  - synonym: {value}", "    examples: |"]
                    lines += [f"      - {s}" for s in surfaces]
                for table, values in data.lookups.items():
                    lines += [f"  - lookup: {table}", "    examples: |"]
                    lines += [f"      - {v}" for v in values]
                for table, patterns in data.regexes.items():
                    lines += [f"  - regex: {table}", "    examples: |"]
                    lines += [f"      - {p}" for p in patterns]
            path = out_dir / f"fold_{f + 1}" / f"{name}.yml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _group(synonyms: dict[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for surface, value in synonyms.items():
        out.setdefault(value, []).append(surface)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--write-folds", type=Path, help="write Rasa-format fold files here")
    ap.add_argument("--rasa-results", type=Path, help="JSON from the Rasa DIET runner")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from musicbert.text_tower import TextTower

    data = load_nlu()
    if args.write_folds:
        write_folds(data, args.folds, args.write_folds)
        print(f"wrote {args.folds} Rasa fold(s) to {args.write_folds}")
    tower = TextTower.load()
    print(f"in-process NLU, {args.folds}-fold CV on {len(data.examples)} examples", flush=True)
    columns = {"in_process": evaluate_in_process(data, args.folds, tower)}
    columns["in_process"].update(measure_latency(data, tower))
    if args.rasa_results:
        columns["rasa_diet"] = json.loads(args.rasa_results.read_text())

    keys = ["intent_accuracy", "entity_f1", "entity_value_accuracy", "parse_p50_ms"]
    keys += ["parse_p95_ms"]
    names = list(columns)
    print()
    print(f"{'metric':24}" + "".join(f"{n:>14}" for n in names) + f"{'target':>10}")
    for key in keys:
        row = f"{key:24}"
        for n in names:
            v = columns[n].get(key)
            row += f"{v:>14}" if v is not None else f"{'-':>14}"
        target = TARGETS.get(key)
        row += f"{target:>10}" if target is not None else f"{'':>10}"
        print(row)
    result = {
        "benchmark": "nlu",
        "examples": len(data.examples),
        "intents": len(data.intents),
        "folds": args.folds,
        "torch_threads": args.threads,
        "machine": platform.processor() or platform.machine(),
        # the CPU is shared: a high load average inflates the latency figures
        "load_average_1m": round(os.getloadavg()[0], 2),
        "targets": TARGETS,
        "columns": columns,
        "nlu_sha256": data.sha256,
    }
    write_results(RESULTS / "nlu.json", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
