"""Real-music dev set: does "metal music" find metal among recordings the model never saw?

The dev clips are whole Debian packages held out of training (``training.real_corpus``:
Frets on Fire's songs, Nexuiz's soundtrack) plus the held-out half of the Wesnoth
soundtrack and ``../shared/data/recordings``. Their genre labels come from the files'
own genre tags and the packages' descriptions, never from listening or a model:
"Death Metal" / metal (Frets on Fire), electronic (Nexuiz), "Romantic Classical"
(Wesnoth). Every dev and test clip of the cache is a candidate in the searches.

Measures, for each checkpoint and for two training-free baselines (the clip's
musicnn tag of that name; MiniLM similarity between the query and the tag names,
weighting the clip's tag probabilities):
- zero-shot genre: argmax over the prompts "<genre> music" for 11 genres;
- ``search "<genre> music"`` precision@10, and the same for short everyday queries;
- the fused ranking the catalog uses (shared-space score + lexical tag evidence);
- a genre probe (SVM, grouped by track) on the frozen vectors beside musicnn's.

Run: ``python benchmarks/real_music.py --cache DIR --checkpoint DIR [DIR ...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from report import write_results

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GENRES = (
    "blues", "classical", "country", "disco", "hip hop", "jazz", "metal", "pop", "reggae",
    "rock", "electronic",
)  # fmt: skip

#: everyday requests for the dev genres, written for this set (not the held-out one)
SHORT_QUERIES = {
    "metal": ("heavy metal", "something heavy with distorted guitars", "headbanging music"),
    "electronic": ("techno", "EDM", "electronic beats", "synth music"),
    "classical": ("orchestral music", "a symphony", "epic orchestral soundtrack"),
    "jazz": ("jazzy", "smooth jazz", "swing"),
}


def precision_at(scores: np.ndarray, relevant: np.ndarray, k: int = 10) -> float:
    top = np.argsort(-scores)[:k]
    return float(relevant[top].mean())


def tag_bridge(tower, queries: list[str], probs: np.ndarray) -> np.ndarray:
    """(queries, clips): MiniLM similarity of query and tag names, weighting tag probabilities."""
    from musicbert.concepts import concept_names

    q = tower.embed(queries)
    t = tower.embed(concept_names())
    sim = np.clip(np.asarray(q) @ np.asarray(t).T, 0, None) ** 3  # keep the close names
    return sim @ probs.T


def evaluate_scores(
    name: str, score_fn, pool: list[int], labels: dict[int, str]
) -> dict[str, float]:
    """Zero-shot, genre-prompt p@10 and short-query p@10 for one scoring function."""
    labelled = [i for i in pool if i in labels]
    genres = sorted(set(labels.values()))
    prompts = [f"{g} music" for g in GENRES]
    s = score_fn(prompts)  # (prompts, pool)
    col = {i: j for j, i in enumerate(pool)}
    pred = {i: GENRES[int(np.argmax(s[:, col[i]]))] for i in labelled}
    row = {
        "zero-shot genre": float(np.mean([pred[i] == labels[i] for i in labelled])),
        "zero-shot genre (balanced)": float(
            np.mean([np.mean([pred[i] == g for i in labelled if labels[i] == g]) for g in genres])
        ),
    }
    p10, rprec = [], []
    for g in genres:
        relevant = np.array([labels.get(i) == g for i in pool])
        p10.append(precision_at(s[GENRES.index(g)], relevant))
        rprec.append(precision_at(s[GENRES.index(g)], relevant, int(relevant.sum())))
        row[f"R-precision {g}"] = rprec[-1]
    row["genre p@10 (mean)"] = float(np.mean(p10))
    row["genre R-precision (mean)"] = float(np.mean(rprec))
    short = []
    for g, queries in SHORT_QUERIES.items():
        relevant = np.array([labels.get(i) == g for i in pool])
        qs = score_fn(list(queries))
        short += [precision_at(q, relevant, int(relevant.sum())) for q in qs]
    row["short-query R-precision"] = float(np.mean(short))
    print(f"  {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)
    return row


def probe(features: np.ndarray, y: list[str], groups: list[str]) -> float:
    from sklearn.model_selection import GroupKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    folds = GroupKFold(n_splits=min(5, len(set(groups))))
    clf = make_pipeline(StandardScaler(), SVC(C=1.0, kernel="rbf"))
    return float(cross_val_score(clf, features, y, groups=groups, cv=folds).mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="feature cache (with --real)")
    parser.add_argument("--checkpoint", type=Path, nargs="*", default=[])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/real_music.json")
    args = parser.parse_args(argv)

    import torch

    from catalog.lexical import fuse, tag_confidences, tag_evidence
    from musicbert.text_tower import TextTower
    from training.evaluate import MusicBertRun
    from training.features import load_cache
    from training.real_corpus import dev_labels, dev_pool

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    cache = load_cache(args.cache)
    labels = dev_labels(cache)
    pool = dev_pool(cache)
    probs = cache.tag_probs[pool].astype(np.float64)
    counts = {g: sum(1 for i in pool if labels.get(i) == g) for g in sorted(set(labels.values()))}
    print(f"dev pool: {len(pool)} clips; labelled {counts}")
    tower = TextTower.load()
    result = {"pool": len(pool), "labelled": counts, "rows": {}}

    from musicbert.concepts import concept_names
    from musicbert.vocabulary import tags_in

    names = [n.casefold() for n in concept_names()]

    def same_name(queries):  # the clip's probability of the tag named in the query
        out = np.zeros((len(queries), len(pool)))
        for q, text in enumerate(queries):
            wanted = tags_in(text)
            cols = [j for j, n in enumerate(names) if tags_in(n) & wanted]
            if cols:
                out[q] = probs[:, cols].max(1)
        return out

    result["rows"]["musicnn tag of that name"] = evaluate_scores(
        "tag of that name", same_name, pool, labels
    )
    result["rows"]["tag bridge (MiniLM x tag probabilities)"] = evaluate_scores(
        "tag bridge", lambda q: tag_bridge(tower, q, probs), pool, labels
    )
    patches = [cache.item_patches(i).astype(np.float32) for i in pool]
    labelled = [j for j, i in enumerate(pool) if i in labels]
    y = [labels[pool[j]] for j in labelled]
    groups = [
        cache.items[pool[j]].labels.get("track", cache.items[pool[j]].item_id) for j in labelled
    ]
    musicnn_mean = np.stack([p.mean(0) for p in patches])
    result["probe"] = {"musicnn (frozen, mean-pooled)": probe(musicnn_mean[labelled], y, groups)}

    for ckpt in args.checkpoint:
        run = MusicBertRun(ckpt)
        pooled, audio = run.audio(patches, cache.tag_probs[pool].astype(np.float32))

        def text_scores(queries, run=run, audio=audio):
            enc = tower.encode(queries)
            states = [
                s[m.bool()].numpy()
                for s, m in zip(enc.token_states, enc.attention_mask, strict=True)
            ]
            return run.text(states) @ audio.T

        label = f"MusicBERT {ckpt.name if ckpt.name != 'final' else ckpt.parent.name}"
        result["rows"][label] = evaluate_scores(label, text_scores, pool, labels)
        stored = [tag_confidences(_stored_tags(p).items()) for p in probs]

        def fused(queries, text_scores=text_scores, stored=stored):
            rows = text_scores(queries)
            return np.stack(
                [fuse(r, tag_evidence(q, stored)) for q, r in zip(queries, rows, strict=True)]
            )

        result["rows"][label + " + lexical (fused)"] = evaluate_scores(
            label + " + lexical", fused, pool, labels
        )
        result["probe"][label] = probe(pooled[labelled], y, groups)
    print("probe (genre SVM, grouped by track): " + json.dumps(result["probe"]))
    write_results(args.out, result, indent=1)
    return 0


def _stored_tags(probs: np.ndarray) -> dict[str, float]:
    """The tags ingest would store for a clip with these probabilities (name -> confidence)."""
    from catalog.ingest import select_model_tags
    from musicbert.tagger import model_tags

    tags = model_tags({"MSD_musicnn": probs[:50], "MTT_musicnn": probs[50:]})
    return {name: conf for name, _kind, conf in select_model_tags(tags)}


if __name__ == "__main__":
    raise SystemExit(main())
