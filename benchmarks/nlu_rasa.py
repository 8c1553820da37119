"""Rasa 3.6 DIET column of the NLU benchmark: k-fold intent accuracy, entity F1, latency.

Usage: .venv/bin/python benchmarks/nlu_rasa.py [--folds 5] [--epochs N] [--workdir DIR]

The folds are the in-process benchmark's own (``benchmarks/nlu.py``: ``folds`` and
``write_folds``, same seed), so both columns train and test on identical splits. Each
fold trains an NLU-only Rasa model (``rasa train nlu``) with the project's config.yml
(``--epochs`` overrides DIETClassifier's epochs, to fit a slow machine), serves it with
``rasa run --enable-api`` on loopback and parses every held-out example through
``/model/parse``. Scoring is the in-process benchmark's: intent accuracy, and entity
precision/recall/F1 where an entity counts when its type, start and end match the
annotation (value accuracy beside it). Rasa's ``nlu_fallback`` (FallbackClassifier below
its threshold) counts as ``out_of_scope``, the in-process NLU's low-confidence answer.

Latency, after all folds, on the fold-1 model and every example: ``parse_p50_ms`` /
``parse_p95_ms`` are HTTP round trips to ``/model/parse`` (keep-alive connection,
loopback: they include JSON and HTTP handling, which the in-process column does not
pay); ``agent_p50_ms`` / ``agent_p95_ms`` time ``Agent.parse_message`` inside the Rasa
venv's Python. ``--jobs N`` trains N folds at once (scores are unchanged by it).

Writes benchmarks/results/nlu_rasa.json with the same top-level keys as the in-process
column, so ``benchmarks/nlu.py --rasa-results benchmarks/results/nlu_rasa.json`` puts
the two side by side. Finished folds are kept in benchmarks/results/nlu_rasa.partial.json
and skipped on a re-run with the same data and epochs.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from report import write_results

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.nlu.rasa_format import PROJECT_DIR, NLUData, load_nlu  # noqa: E402
from assistant.rasa_env import RasaEnv, ensure_env  # noqa: E402
from assistant.rasa_server import RasaClient, free_port, serve, train  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
FALLBACK = {"nlu_fallback": "out_of_scope"}

_AGENT_TIMER = """
import asyncio, json, sys, time
from rasa.core.agent import Agent

async def main():
    agent = Agent.load(sys.argv[1])
    texts = json.load(open(sys.argv[2]))
    for text in texts[:20]:
        await agent.parse_message(text)
    times = []
    for text in texts:
        t0 = time.perf_counter()
        await agent.parse_message(text)
        times.append((time.perf_counter() - t0) * 1000)
    print("TIMES " + json.dumps(times))

asyncio.run(main())
"""


def in_process_benchmark():
    """benchmarks/nlu.py as a module (it is a script, not a package member)."""
    spec = importlib.util.spec_from_file_location("benchmark_nlu", ROOT / "benchmarks" / "nlu.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def config_copy(dst: Path, epochs: int | None) -> tuple[Path, int]:
    """config.yml (DIET epochs replaced when asked) -> path and the epochs DIET will run."""
    doc = yaml.safe_load((PROJECT_DIR / "config.yml").read_text(encoding="utf-8"))
    diet = [c for c in doc["pipeline"] if c.get("name") == "DIETClassifier"]
    if not diet:
        raise SystemExit("config.yml has no DIETClassifier: nothing to benchmark")
    if epochs is not None:
        diet[0]["epochs"] = epochs
    dst.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return dst, int(diet[0].get("epochs", 300))  # 300 is DIET's own default


def percentile(sorted_ms: list[float], q: float) -> float:
    return round(sorted_ms[int(q * (len(sorted_ms) - 1))], 2)


def parse_fold(env: RasaEnv, model: Path, data: NLUData, test_idx: list[int], log: Path) -> dict:
    """Serve one fold's model and parse its held-out examples through /model/parse."""
    port = free_port()
    client = RasaClient(f"http://127.0.0.1:{port}")
    records = []
    with serve(env, model, port, log, cwd=model.parent) as server:
        server.wait_until(client.ready, timeout=1800, what="rasa run (fold model)")
        for i in test_idx:
            ex = data.examples[i]
            out = client.parse(ex.text)
            intent = (out.get("intent") or {}).get("name") or "nlu_fallback"
            records.append(
                {
                    "index": i,
                    "gold_intent": ex.intent,
                    "intent": intent,
                    "gold": [[e.entity, e.start, e.end, e.value] for e in ex.entities],
                    "got": [
                        [e["entity"], e["start"], e["end"], str(e.get("value", ""))]
                        for e in out.get("entities") or []
                    ],
                }
            )
        client.close()
    return {"records": records}


def http_latency(env: RasaEnv, model: Path, texts: list[str], log: Path) -> dict:
    """/model/parse round trips for every example on one served model (after a warm-up)."""
    port = free_port()
    client = RasaClient(f"http://127.0.0.1:{port}")
    times = []
    with serve(env, model, port, log, cwd=model.parent) as server:
        server.wait_until(client.ready, timeout=1800, what="rasa run (latency)")
        for text in texts[:20]:
            client.parse(text)
        for text in texts:
            t0 = time.perf_counter()
            client.parse(text)
            times.append((time.perf_counter() - t0) * 1000)
        client.close()
    times.sort()
    return {
        "parse_p50_ms": round(statistics.median(times), 2),
        "parse_p95_ms": percentile(times, 0.95),
        "parse_max_ms": round(times[-1], 2),
        "parses_timed": len(times),
        "parse_latency_includes": "HTTP round trip to /model/parse on loopback (keep-alive)",
    }


def score(records: list[dict]) -> dict:
    """The in-process benchmark's scoring (benchmarks/nlu.py) applied to Rasa's parses."""
    correct = tp = fp = fn = value_ok = fallbacks = 0
    confusions: dict[str, int] = {}
    for r in records:
        predicted = FALLBACK.get(r["intent"], r["intent"])
        fallbacks += r["intent"] in FALLBACK
        if predicted == r["gold_intent"]:
            correct += 1
        else:
            key = f"{r['gold_intent']} -> {predicted}"
            confusions[key] = confusions.get(key, 0) + 1
        gold = {(e, s, t): v for e, s, t, v in r["gold"]}
        got = {(e, s, t): v for e, s, t, v in r["got"]}
        hits = gold.keys() & got.keys()
        tp += len(hits)
        fp += len(got.keys() - gold.keys())
        fn += len(gold.keys() - got.keys())
        value_ok += sum(gold[h].lower() == got[h].lower() for h in hits)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "intent_accuracy": round(correct / len(records), 4) if records else 0.0,
        "entity_precision": round(precision, 4),
        "entity_recall": round(recall, 4),
        "entity_f1": round(f1, 4),
        "entity_value_accuracy": round(value_ok / tp, 4) if tp else 0.0,
        "nlu_fallbacks": fallbacks,
        "top_confusions": dict(sorted(confusions.items(), key=lambda kv: -kv[1])[:15]),
    }


def agent_latency(env: RasaEnv, model: Path, texts: list[str], work: Path) -> dict:
    """Agent.parse_message inside the Rasa venv: DIET's own cost, without HTTP."""
    texts_file = work / "texts.json"
    texts_file.write_text(json.dumps(texts))
    proc = subprocess.run(
        [str(env.python), "-c", _AGENT_TIMER, str(model), str(texts_file)],
        capture_output=True,
        text=True,
        env=env.environ(),
        timeout=1800,
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("TIMES ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"Agent timing failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    times = sorted(json.loads(line[6:]))
    return {
        "agent_p50_ms": round(statistics.median(times), 2),
        "agent_p95_ms": percentile(times, 0.95),
        "agent_parses_timed": len(times),
    }


def run(k: int = 5, epochs: int | None = None, workdir: Path | None = None, jobs: int = 1) -> dict:
    """The whole DIET column; returns (and writes) the result dict."""
    bench = in_process_benchmark()
    data = load_nlu()
    env = ensure_env()
    parts = bench.folds(data, k)
    with tempfile.TemporaryDirectory(prefix="musicbert-diet-") as tmp:
        work = Path(workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        bench.write_folds(data, k, work)
        config, diet_epochs = config_copy(work / "config.yml", epochs)
        key = hashlib.sha256(
            (data.sha256 + (PROJECT_DIR / "config.yml").read_text() + str(diet_epochs)).encode()
        ).hexdigest()
        partial_file = RESULTS / "nlu_rasa.partial.json"
        done: dict[str, dict] = {}
        if partial_file.exists():
            saved = json.loads(partial_file.read_text())
            if saved.get("key") == key:
                done = saved["folds"]
        print(
            f"Rasa {env.version} DIET ({diet_epochs} epochs), {k}-fold CV on "
            f"{len(data.examples)} examples; work dir {work}",
            flush=True,
        )
        lock = threading.Lock()

        def train_fold(f: int) -> Path:
            fold_dir = work / f"fold_{f}"
            return train(
                env,
                PROJECT_DIR,
                fold_dir,
                fold_dir / "rasa.log",
                nlu_only=True,
                config=config,
                data=[fold_dir / "train.yml"],
                name="nlu",
                cwd=fold_dir,
                timeout=3 * 3600,
            )

        def run_fold(f: int) -> None:
            t0 = time.perf_counter()
            model = train_fold(f)
            train_s = time.perf_counter() - t0
            fold = parse_fold(env, model, data, parts[f - 1], work / f"fold_{f}" / "server.log")
            fold["train_seconds"] = round(train_s, 1)
            fold_score = score(fold["records"])
            with lock:
                done[str(f)] = fold
                RESULTS.mkdir(parents=True, exist_ok=True)
                partial_file.write_text(json.dumps({"key": key, "folds": done}))
            print(
                f"  fold {f}/{k}: intent accuracy {fold_score['intent_accuracy']:.3f}, "
                f"entity F1 {fold_score['entity_f1']:.3f}, trained in {train_s:.0f} s",
                flush=True,
            )

        todo = [f for f in range(1, k + 1) if str(f) not in done]
        if len(todo) < k:
            print(f"  folds {sorted(set(range(1, k + 1)) - set(todo))} done earlier, reused")
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for future in [pool.submit(run_fold, f) for f in todo]:
                future.result()
        model = work / "fold_1" / "nlu.tar.gz"
        if not model.exists():
            model = train_fold(1)
        texts = [ex.text for ex in data.examples]
        print("  latency: fold-1 model over HTTP, then Agent.parse_message", flush=True)
        latency = http_latency(env, model, texts, work / "latency_server.log")
        latency.update(agent_latency(env, model, texts, work))

    records = [r for f in sorted(done, key=int) for r in done[f]["records"]]
    result = score(records)
    result["intent_accuracy_per_fold"] = [
        score(done[f]["records"])["intent_accuracy"] for f in sorted(done, key=int)
    ]
    result.update(
        {
            **latency,
            "engine": f"Rasa Open Source {env.version} DIETClassifier",
            "diet_epochs": diet_epochs,
            "config_epochs_overridden": epochs is not None,
            "train_seconds_per_fold": [done[f]["train_seconds"] for f in sorted(done, key=int)],
            "folds": k,
            "examples": len(data.examples),
            "nlu_sha256": data.sha256,
            "machine": platform.processor() or platform.machine(),
        }
    )
    write_results(RESULTS / "nlu_rasa.json", result)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, help="DIETClassifier epochs (default: config.yml's)")
    ap.add_argument("--workdir", type=Path, help="keep fold files, models and logs here")
    ap.add_argument("--jobs", type=int, default=1, help="folds trained at the same time")
    args = ap.parse_args(argv)
    result = run(args.folds, args.epochs, args.workdir, args.jobs)
    print()
    print(f"{'metric':26}{'Rasa DIET':>12}")
    for key in (
        "intent_accuracy",
        "entity_precision",
        "entity_recall",
        "entity_f1",
        "entity_value_accuracy",
        "nlu_fallbacks",
        "parse_p50_ms",
        "parse_p95_ms",
        "agent_p50_ms",
        "agent_p95_ms",
    ):
        print(f"{key:26}{result[key]:>12}")
    print(
        f"DIET epochs {result['diet_epochs']}; "
        f"training seconds per fold {result['train_seconds_per_fold']}"
    )
    print(f"parse_* = {result['parse_latency_includes']}; agent_* = Agent.parse_message")
    print(f"\nwrote {RESULTS / 'nlu_rasa.json'}")
    print(
        "side by side: .venv/bin/python benchmarks/nlu.py --rasa-results "
        + str(RESULTS / "nlu_rasa.json")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
