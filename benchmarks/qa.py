"""QA benchmark: accuracy per question type and answer latency on the QA set.

    .venv/bin/python benchmarks/qa.py [--db URL] [--set benchmarks/qa_set.jsonl]
                                      [--nlu auto|none] [--no-embedder]

Every question goes through ``QAEngine.ask``: through the dialogue NLU's parse
(intent + entities) when ``assistant.nlu`` can be loaded ("full path"), else
through the QA engine's own reading of the text ("parse-free"); the JSON says
which. Answers are compared on ``Reply.data["answer"]`` with a normalised match
per kind (numbers within a tolerance, names case/accent-insensitive, sets of
names, keys spelling-insensitive, "I don't know" with the right reason).
Hedged answers count when their value matches; the hedge rate is reported.
Content questions run a second time with file tags hidden (models only), which
measures the musicnn + MusicBERT evidence itself; that row has no target.
Latency is the QA answer's, per question, after ``QAEngine.warm()`` (one-off costs
such as parsing every score are reported as warm-up time); on the full path the NLU
parse is timed apart and reported beside it. A question the NLU sends to a non-QA
intent counts as wrong (the dialogue would not have asked QA).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from report import write_results  # noqa: E402

from assistant.qa import QA_INTENTS, QAContext, QAEngine  # noqa: E402
from catalog.db import open_catalog  # noqa: E402
from catalog.keys import read_key, same_key  # noqa: E402
from catalog.names import fold  # noqa: E402

TARGETS = {"overall": 0.90, "per_type": 0.80, "p95_ms": 100.0}


def _as_list(v) -> list:
    if v is None:
        return []
    return list(v) if isinstance(v, (list, tuple)) else [v]


def matches(item: dict, data: dict) -> bool:
    kind, gold, value = item["match"], item["gold"], data.get("answer")
    if kind == "unknown":
        return data.get("known") is False and data.get("reason") == gold
    if data.get("known") is False or value is None:
        return False
    if kind == "number":
        try:
            return abs(float(value) - float(gold)) <= float(item.get("tolerance", 0)) + 1e-9
        except (TypeError, ValueError):
            return False
    if kind == "count":
        n = len(value) if isinstance(value, (list, tuple)) else value
        return n == gold
    if kind == "yes_no":
        return isinstance(value, bool) and value == bool(gold)
    if kind == "key":
        return bool(same_key(read_key(str(value)), read_key(str(gold))))
    if kind == "names":
        return sorted(fold(str(v)) for v in _as_list(value)) == sorted(
            fold(str(g)) for g in _as_list(gold)
        )
    # name / term: one name, case- and accent-insensitive
    values = _as_list(value)
    return len(values) == 1 and fold(str(values[0])) == fold(str(gold))


def analysis_vs_render(engine: QAEngine) -> dict:
    """How the audio estimates compare with the tempo and key a piece was rendered at.

    Not a QA score (QA answers rendered pieces from their file tags); it tells how far
    the estimates that answer questions about recordings can be trusted.
    """
    tracks = engine.view.current().tracks.values()
    tempo = [
        (t.tempo, t.analysed_tempo) for t in tracks if t.tempo_source == "file" and t.analysed_tempo
    ]
    keys = [
        (t.key, t.mode, t.analysed_key) for t in tracks if t.key_source == "file" and t.analysed_key
    ]

    def close(a: float, b: float) -> bool:
        return abs(a - b) <= 0.04 * a

    octave = sum(any(close(true, est * f) for f in (0.5, 1, 2)) for true, est in tempo)
    return {
        "tempo_pieces": len(tempo),
        "tempo_within_4pct": sum(close(true, est) for true, est in tempo),
        "tempo_within_4pct_up_to_octave": octave,
        "key_pieces": len(keys),
        "key_exact": sum(bool(same_key((k, m), read_key(est))) for k, m, est in keys),
        "mode_same": sum(m == read_key(est)[1] for k, m, est in keys),
    }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[idx]


def load_nlu(catalog, embedder, mode: str):
    if mode == "none":
        return None, "parse-free (the QA engine's own question reading)"
    from assistant.nlu import NLU

    return NLU.load(catalog=catalog, embedder=embedder), "full path (dialogue NLU -> QA)"


def ask_timed(engine: QAEngine, text: str, ctx: QAContext):
    """engine.ask, with the NLU parse and the QA answer timed apart (ms)."""
    if engine.nlu is None:
        t0 = time.perf_counter()
        reply = engine.ask(text, ctx)
        return reply, 0.0, (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    parse = engine.nlu.parse(text)
    t1 = time.perf_counter()
    routed = parse.intent in QA_INTENTS
    reply = engine.answer(parse.intent if routed else None, parse, ctx)
    t2 = time.perf_counter()
    reply.data["nlu_intent"], reply.data["nlu_routed"] = parse.intent, routed
    return reply, (t1 - t0) * 1000, (t2 - t1) * 1000


def run(engine: QAEngine, items: list[dict]) -> tuple[list[dict], list[float]]:
    """Latencies are the QA answer's; the NLU parse time is kept per result (nlu_ms)."""
    results, latencies = [], []
    for item in items:
        ctx = QAContext()
        for prior in item.get("context", []):
            ask_timed(engine, prior, ctx)
        reply, nlu_ms, ms = ask_timed(engine, item["question"], ctx)
        latencies.append(ms)
        ok = matches(item, reply.data)
        routed = reply.data.get("nlu_routed", True)
        results.append(
            {
                "id": item["id"],
                "type": item["type"],
                "question": item["question"],
                "gold": item["gold"],
                "answer": reply.data.get("answer"),
                "known": reply.data.get("known"),
                "reason": reply.data.get("reason"),
                "hedged": reply.data.get("hedged"),
                "correct": ok and routed,
                "nlu_intent": reply.data.get("nlu_intent"),
                "ms": round(ms, 2),
                "nlu_ms": round(nlu_ms, 2),
                "text": reply.text,
            }
        )
    return results, latencies


def main() -> int:
    ap = argparse.ArgumentParser(description="QA accuracy and latency on the QA set")
    ap.add_argument("--db", help="catalog URL (default: $MUSICBERT_DB or the home catalog)")
    ap.add_argument("--set", default=str(ROOT / "benchmarks" / "qa_set.jsonl"))
    ap.add_argument("--nlu", choices=("auto", "none"), default="auto")
    ap.add_argument("--no-embedder", action="store_true", help="skip MusicBERT zero-shot")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "qa.json"))
    ap.add_argument("--show-errors", action="store_true")
    args = ap.parse_args()

    items = [json.loads(line) for line in open(args.set, encoding="utf-8") if line.strip()]
    catalog = open_catalog(args.db)
    embedder = None
    if not args.no_embedder:
        import warnings

        from musicbert.embedder import Embedder

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            embedder = Embedder.load()
    nlu, path = load_nlu(catalog, embedder, args.nlu)
    engine = QAEngine(catalog, embedder=embedder, nlu=nlu)
    t0 = time.perf_counter()
    engine.warm()
    warm_s = time.perf_counter() - t0
    engine.ask("how long is it?", QAContext())  # first-call costs (imports, regex compiles)

    results, latencies = run(engine, items)
    content = [i for i in items if i["type"] == "content"]
    models_only = QAEngine(catalog, embedder=embedder, nlu=nlu, use_file_tags=False)
    models_only.warm()
    content_results, _ = run(models_only, content)

    by_type: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        by_type[r["type"]].append(r)
    rows = []
    for qtype, rs in sorted(by_type.items()):
        acc = sum(r["correct"] for r in rs) / len(rs)
        rows.append(
            {
                "type": qtype,
                "n": len(rs),
                "accuracy": round(acc, 4),
                "hedged": sum(bool(r["hedged"]) for r in rs),
                "p50_ms": round(statistics.median(r["ms"] for r in rs), 2),
                "p95_ms": round(percentile([r["ms"] for r in rs], 0.95), 2),
            }
        )
    overall = sum(r["correct"] for r in results) / len(results)
    models_acc = (
        sum(r["correct"] for r in content_results) / len(content_results)
        if content_results
        else None
    )
    summary = {
        "path": path,
        "embedder": None
        if embedder is None
        else {"model_id": str(embedder.model_id), "untrained": bool(embedder.untrained)},
        "questions": len(results),
        "overall_accuracy": round(overall, 4),
        "per_type": rows,
        "content_models_only_accuracy": None if models_acc is None else round(models_acc, 4),
        "content_models_only_hedged": sum(bool(r["hedged"]) for r in content_results),
        "content_models_only_answered": sum(bool(r["known"]) for r in content_results),
        "content_models_only_correct_when_answered": sum(
            bool(r["known"]) and r["correct"] for r in content_results
        ),
        "latency_ms": {
            "p50": round(statistics.median(latencies), 2),
            "p95": round(percentile(latencies, 0.95), 2),
            "max": round(max(latencies), 2),
        },
        "nlu_parse_ms": None
        if nlu is None
        else {
            "p50": round(statistics.median(r["nlu_ms"] for r in results), 2),
            "p95": round(percentile([r["nlu_ms"] for r in results], 0.95), 2),
        },
        "misrouted_by_nlu": sum(
            1 for r in results if r["nlu_intent"] is not None and r["nlu_intent"] not in QA_INTENTS
        ),
        "warm_up_s": round(warm_s, 2),
        "analysis_vs_render": analysis_vs_render(engine),
        "targets": TARGETS,
        "meets_targets": {
            "overall": overall >= TARGETS["overall"],
            "per_type": all(r["accuracy"] >= TARGETS["per_type"] for r in rows),
            "p95": percentile(latencies, 0.95) <= TARGETS["p95_ms"],
        },
        "results": results,
        "content_models_only": content_results,
    }
    print(f"QA benchmark: {len(results)} questions, {path}")
    print(f"{'type':<14}{'n':>5}{'accuracy':>10}{'hedged':>8}{'p50 ms':>9}{'p95 ms':>9}")
    for r in rows:
        print(
            f"{r['type']:<14}{r['n']:>5}{r['accuracy']:>10.1%}{r['hedged']:>8}"
            f"{r['p50_ms']:>9.2f}{r['p95_ms']:>9.2f}"
        )
    lat = summary["latency_ms"]
    print(
        f"{'overall':<14}{len(results):>5}{overall:>10.1%}{'':>8}{lat['p50']:>9.2f}"
        f"{lat['p95']:>9.2f}"
    )
    if models_acc is not None:
        print(
            f"{'content (models only, no file tags)':<40}{models_acc:>8.1%}  hedged "
            f"{summary['content_models_only_hedged']}/{len(content_results)}; answered "
            f"{summary['content_models_only_answered']}, of which correct "
            f"{summary['content_models_only_correct_when_answered']} (the rest: I don't know)"
        )
    print(
        f"warm-up (snapshot, scores, prompts): {warm_s:.2f} s; targets: overall >= 90%, "
        f"each type >= 80%, p95 <= 100 ms -> {summary['meets_targets']}"
    )
    if summary["nlu_parse_ms"]:
        n = summary["nlu_parse_ms"]
        print(
            f"NLU parse (not in the QA latency above): p50 {n['p50']:.1f} ms, p95 "
            f"{n['p95']:.1f} ms; questions the NLU sent to a non-QA intent (counted wrong): "
            f"{summary['misrouted_by_nlu']}"
        )
    avr = summary["analysis_vs_render"]
    if avr["tempo_pieces"]:
        print(
            f"audio analysis vs render truth (informational): tempo within 4% "
            f"{avr['tempo_within_4pct']}/{avr['tempo_pieces']} "
            f"({avr['tempo_within_4pct_up_to_octave']} allowing octave errors); key exact "
            f"{avr['key_exact']}/{avr['key_pieces']}, mode {avr['mode_same']}/{avr['key_pieces']}"
        )
    if args.show_errors:
        for r in results:
            if not r["correct"]:
                print(
                    f"  MISS {r['id']}: {r['question']!r} gold={r['gold']!r} "
                    f"got={r['answer']!r} ({r['reason']}) :: {r['text'][:140]}"
                )
    write_results(args.out, summary, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
