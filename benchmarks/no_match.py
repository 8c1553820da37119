"""Calibrate the "no good match" threshold of a text search.

A search always returns the nearest tracks, even for "🦄🦄" or "tax return form".
This script embeds sensible music requests and nonsense and measures two signals:
- ``shared``: the query's best shared-space cosine over every track of a real library
  (``Hit.similarity`` of the best hit, before lexical evidence);
- ``music``: ``SearchEngine.music_relevance``, the query's best text-tower cosine to
  the music vocabulary.
For each it prints the ROC AUC (sensible vs nonsense) and the threshold midway between
the highest nonsense and the lowest sensible DEV query (or, when they overlap, just
under the lowest sensible one, so that no sensible dev query is flagged). The
HELD-OUT sets are only reported. ``catalog.search.NO_MATCH_SIMILARITY`` holds the
``music`` threshold (the ``shared`` one does not separate for the default model).

Run: ``MUSICBERT_HOME=~/.cache/mb-demo python benchmarks/no_match.py [--checkpoint DIR]``
(the demo library: Wesnoth orchestral, Maxstack electronic, rendered classical).
Writes ``benchmarks/results/no_match.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from report import write_results

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SENSIBLE_DEV = (
    "calm piano", "metal", "electronic dance music", "epic orchestral battle music",
    "sad music", "something upbeat", "classical", "string quartet", "choir", "organ",
    "ambient synth", "fiddle tunes", "relaxing music", "fast drums", "jazz",
    "happy folk dance", "dark atmospheric soundtrack", "techno", "slow sad violin",
    "music for studying",
)  # fmt: skip
NONSENSE_DEV = (
    "🦄🦄", "asdkjh qwe", "the quick brown fox", "tax return form", "???", "zzzzzzzz",
    "qwertyuiop", "my car insurance renewal", "how to cook rice", "1234567890",
    "lorem ipsum dolor sit amet", "xkcd 927", "🍕🍕🍕", "password reset email",
)  # fmt: skip
SENSIBLE_HELD_OUT = (
    "soft piano ballad", "heavy guitar riffs", "orchestra", "chill electronic",
    "baroque", "energetic music for running", "a waltz", "medieval vocal music",
)  # fmt: skip
NONSENSE_HELD_OUT = (
    "🐸", "jfkdls", "invoice number 42", "weather tomorrow in Paris", "kjh kjh kjh",
    "spreadsheet formula", "the cat sat on the mat",
)  # fmt: skip


def best_cosines(engine, queries) -> list[float]:
    out = []
    for query in queries:
        scores, _ = engine.index.search(engine.query_vector(query), 1)
        out.append(float(scores[0][0]))
    return out


def auc(sensible: list[float], nonsense: list[float]) -> float:
    """P(a sensible query scores above a nonsense one), ties half."""
    pairs = [(s > n) + 0.5 * (s == n) for s in sensible for n in nonsense]
    return sum(pairs) / len(pairs)


def calibrate(sensible: list[float], nonsense: list[float]) -> float:
    low, high = min(sensible), max(nonsense)
    return round((low + high) / 2, 3) if high < low else round(low - 1e-3, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="MusicBERT checkpoint (default: the packaged one)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/no_match.json"))
    args = parser.parse_args()

    import torch

    from catalog.db import open_catalog
    from catalog.search import NO_MATCH_SIMILARITY, SearchEngine
    from musicbert.embedder import Embedder

    torch.set_num_threads(1)
    embedder = Embedder.load(args.checkpoint)
    catalog = open_catalog()
    engine = SearchEngine(catalog, embedder)
    sets = {
        "sensible dev": SENSIBLE_DEV,
        "nonsense dev": NONSENSE_DEV,
        "sensible held-out": SENSIBLE_HELD_OUT,
        "nonsense held-out": NONSENSE_HELD_OUT,
    }
    signals = {
        "shared": {name: best_cosines(engine, queries) for name, queries in sets.items()},
        "music": {
            name: [engine.music_relevance(q) for q in queries] for name, queries in sets.items()
        },
    }
    thresholds = {
        sig: calibrate(values["sensible dev"], values["nonsense dev"])
        for sig, values in signals.items()
    }
    tower = embedder.config.text_tower_id
    print(f"model {engine.model_id} (text tower {tower})")
    print(f"library {catalog.url}: {engine.index.count} tracks\n")
    print(f"{'set':18}  {'query':30}  shared  music  flagged (music < {thresholds['music']})")
    for name, queries in sets.items():
        rows = zip(queries, signals["shared"][name], signals["music"][name], strict=True)
        for query, shared, music in sorted(rows, key=lambda r: r[2]):
            flag = "yes" if music < thresholds["music"] else ""
            print(f"{name:18}  {query[:30]:30}  {shared:6.3f}  {music:5.3f}  {flag}")
    summary = {}
    for sig, values in signals.items():
        held = auc(values["sensible held-out"], values["nonsense held-out"])
        dev = auc(values["sensible dev"], values["nonsense dev"])
        summary[sig] = {"threshold": thresholds[sig], "auc_dev": dev, "auc_held_out": held}
        print(
            f"\nsignal {sig}: ROC AUC dev {dev:.3f}, held-out {held:.3f};"
            f" threshold {thresholds[sig]:.3f}"
        )
        for name in sets:
            v = np.array(values[name])
            flagged = int((v < thresholds[sig]).sum())
            summary[sig][name] = {"min": float(v.min()), "max": float(v.max()), "flagged": flagged}
            print(f"  {name:18}  min {v.min():.3f}  max {v.max():.3f}  flagged {flagged}/{len(v)}")
    print(f"\nin catalog/search.py now: {NO_MATCH_SIMILARITY.get(tower)} (signal music)")
    result = {
        "model_id": engine.model_id,
        "text_tower": tower,
        "library": catalog.url,
        "tracks": engine.index.count,
        "summary": summary,
        "queries": {
            sig: {name: dict(zip(sets[name], v, strict=True)) for name, v in values.items()}
            for sig, values in signals.items()
        },
    }
    write_results(args.out, result, ensure_ascii=False)
    catalog.close()


if __name__ == "__main__":
    main()
