"""Table 1 of the paper, reproduced on what exists here: frozen representations + probes.

Rows: MFCC statistics, frozen musicnn (mean-pooled penultimate; the VGGish column's
analogue), and MusicBERT trained with each objective (masked reconstruction, MIM =
InfoNCE + CPC, tags, combined), each over several training seeds (mean and std).
Probes are fixed for every row: standardised features, ``SVC(C=1, rbf)`` and
``LogisticRegression(C=1)``, grouped 3-fold cross-validation by *piece* on clips of
held-out collections only (no MusicBERT run ever trained on them), so a piece's
variations never sit on both sides of a fold.

Tasks: instrument family, tempo class and style on held-out rendered clips; track
identification (second half of a held-out real recording finds its first half,
cosine nearest neighbour); text-to-music retrieval on held-out clips (R@1/5/10,
median rank) and zero-shot instrument/tempo tagging from text prompts, beside a
tag-matching baseline (TF-IDF between the query words and the words of the clip's
musicnn tags). Choices (the default configuration) use the validation split only.

Run: ``musicbert evaluate --cache DIR --runs DIR [--out JSON] [--markdown MD]``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from training.corpus import FAMILIES
from training.features import TEMPO_NAMES, FeatureCache, load_cache

OBJECTIVE_ROWS = (
    ("mlm", "MusicBERT, masked reconstruction (MLM)"),
    ("mim", "MusicBERT, InfoNCE + CPC (MIM)"),
    ("tags", "MusicBERT, tags"),
    ("combined", "MusicBERT, combined"),
)
PROBE_TASKS = ("family", "tempo_class", "style")
FAMILY_PROMPT = "music played on {}"
TEMPO_PROMPTS = {
    "slow": "slow music",
    "moderate": "music at a moderate tempo",
    "fast": "fast music",
}


# ---------------------------------------------------------------- probes
def probe_accuracy(
    x: np.ndarray, y: list[str], groups: list[str], kind: str, folds: int = 3
) -> float:
    """Mean accuracy of a fixed probe over grouped folds (deterministic)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    y_arr, g = np.asarray(y), np.asarray(groups)
    n_groups = len(set(groups))
    if n_groups < 2:
        raise ValueError("probe needs at least two pieces")
    scores = []
    for train, test in GroupKFold(n_splits=min(folds, n_groups)).split(x, y_arr, g):
        if len(set(y_arr[train])) < 2:
            scores.append(float(np.mean(y_arr[test] == y_arr[train][0])))
            continue
        clf = (
            SVC(C=1.0, kernel="rbf") if kind == "svm" else LogisticRegression(C=1.0, max_iter=2000)
        )
        model = make_pipeline(StandardScaler(), clf).fit(x[train], y_arr[train])
        scores.append(float(np.mean(model.predict(x[test]) == y_arr[test])))
    return float(np.mean(scores))


def track_identification(a: np.ndarray, b: np.ndarray) -> float:
    """Share of second segments whose nearest first segment (cosine) is their own track."""
    mu, sd = np.concatenate([a, b]).mean(0), np.concatenate([a, b]).std(0) + 1e-8
    a, b = (a - mu) / sd, (b - mu) / sd
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float(np.mean((b @ a.T).argmax(1) == np.arange(len(b))))


# ---------------------------------------------------------------- retrieval
def retrieval_metrics(scores: np.ndarray) -> dict[str, float]:
    """scores[q, d]: query q's correct document is d == q. R@k and median rank (1 = best)."""
    correct = scores[np.arange(len(scores)), np.arange(len(scores))]
    ranks = 1 + (scores > correct[:, None]).sum(1)
    out = {f"R@{k}": float(np.mean(ranks <= k)) for k in (1, 5, 10)}
    out["median_rank"] = float(np.median(ranks))
    return out


def tag_documents(cache: FeatureCache, indices: list[int], top: int = 10) -> list[str]:
    """Each clip as the words of its most probable musicnn tags (what audio alone says)."""
    from training.captions import ranked_tags

    docs = []
    for i in indices:
        probs = cache.tag_probs[i].astype(np.float64)
        ranked = ranked_tags({"MSD_musicnn": probs[:50], "MTT_musicnn": probs[50:]})
        docs.append(" ".join(name for name, _ in ranked[:top]))
    return docs


def tag_matching_scores(queries: list[str], docs: list[str]) -> np.ndarray:
    """The baseline: TF-IDF cosine between query words and a clip's tag words."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer().fit(docs + queries)
    q, d = vec.transform(queries), vec.transform(docs)
    return (q @ d.T).toarray()


# ---------------------------------------------------------------- representations
class MusicBertRun:
    """A trained run's encoder, applied to cached patch vectors and token states."""

    def __init__(self, checkpoint: Path) -> None:
        from musicbert.embedder import load_checkpoint

        self.model, self.model_id = load_checkpoint(Path(checkpoint))
        self.model.eval()

    def audio(
        self, patch_sets: list[np.ndarray], concepts: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(pooled hidden states, shared-space embeddings) of each patch set.

        ``concepts`` (n, 100): each set's musicnn tag probabilities, for models that read them.
        """
        import torch

        from training.data import _pad

        pooled, embeds = [], []
        with torch.inference_mode():
            for start in range(0, len(patch_sets), 64):
                x, m = _pad([p.astype(np.float32) for p in patch_sets[start : start + 64]])
                c = None
                if self.model.config.concept_tokens:
                    c = torch.from_numpy(np.asarray(concepts[start : start + 64], np.float32))
                out = self.model(audio_patches=x, audio_mask=m, concepts=c)
                pooled.append(out.audio_pooled.numpy())
                embeds.append(out.audio_embeds.numpy())
        return np.concatenate(pooled), np.concatenate(embeds)

    def text(self, states: list[np.ndarray]) -> np.ndarray:
        import torch

        from training.data import _pad

        out = []
        with torch.inference_mode():
            for start in range(0, len(states), 64):
                x, m = _pad([s.astype(np.float32) for s in states[start : start + 64]])
                out.append(self.model.get_text_features(x, m).numpy())
        return np.concatenate(out)


def _halves(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = max(1, len(p) // 2)
    return p[:h], p[h:] if len(p) > 1 else p


class Evaluation:
    """Everything needed to fill one row, computed once per cache and split."""

    def __init__(self, cache: FeatureCache, split: str = "test") -> None:
        self.cache = cache
        self.split = split
        self.clips = cache.indices(split, "corpus")
        self.tracks = [
            i for i in cache.indices(split, "recording") if cache.items[i].n_patches >= 2
        ]
        if len(self.clips) < 6:
            raise ValueError(f"only {len(self.clips)} {split} clips; render more")
        items = [cache.items[i] for i in self.clips]
        self.labels = {t: [it.labels[t] for it in items] for t in PROBE_TASKS}
        self.groups = [it.labels["piece"] for it in items]
        self.queries = [cache.texts[it.query] for it in items]
        self.query_states = [cache.text_state(it.query) for it in items]
        self._prompts: dict[str, np.ndarray] | None = None

    def prompts(self) -> dict[str, tuple[list[str], list[str], list[np.ndarray]]]:
        """Zero-shot prompt texts with their MiniLM token states (loaded once)."""
        if self._prompts is None:
            from musicbert.text_tower import TextTower

            tower = TextTower.load()
            sets = {
                "family": (
                    sorted(FAMILIES),
                    [FAMILY_PROMPT.format(FAMILIES[f][1][0]) for f in sorted(FAMILIES)],
                ),
                "tempo_class": (list(TEMPO_NAMES), [TEMPO_PROMPTS[t] for t in TEMPO_NAMES]),
            }
            self._prompts = {}
            for task, (names, texts) in sets.items():
                enc = tower.encode(texts)
                states = [
                    s[m.bool()].numpy()
                    for s, m in zip(enc.token_states, enc.attention_mask, strict=True)
                ]
                self._prompts[task] = (names, texts, states)
        return self._prompts

    def probe_row(
        self, clip_x: np.ndarray, seg_a: np.ndarray | None, seg_b: np.ndarray | None
    ) -> dict[str, float]:
        row = {}
        for task in PROBE_TASKS:
            for kind in ("svm", "logreg"):
                row[f"{task}/{kind}"] = probe_accuracy(clip_x, self.labels[task], self.groups, kind)
        if seg_a is not None and len(self.tracks) >= 2:
            row["track_id/nn"] = track_identification(seg_a, seg_b)
        return row

    def baseline_rows(self) -> dict[str, dict[str, float]]:
        c = self.cache
        mf = np.stack([c.mfcc[i] for i in self.clips])
        a = np.stack([c.mfcc_segments["a"][i] for i in self.tracks]) if self.tracks else None
        b = np.stack([c.mfcc_segments["b"][i] for i in self.tracks]) if self.tracks else None
        rows = {"MFCC statistics": self.probe_row(mf, a, b)}
        mean = np.stack([c.item_patches(i).astype(np.float32).mean(0) for i in self.clips])
        halves = [_halves(c.item_patches(i).astype(np.float32)) for i in self.tracks]
        a = np.stack([h[0].mean(0) for h in halves]) if halves else None
        b = np.stack([h[1].mean(0) for h in halves]) if halves else None
        rows["musicnn (frozen, mean-pooled)"] = self.probe_row(mean, a, b)
        docs = tag_documents(c, self.clips)
        text_row = retrieval_metrics(tag_matching_scores(self.queries, docs))
        for task, (names, texts, _) in self.prompts().items():
            s = tag_matching_scores(texts, docs)  # (classes, clips)
            pred = [names[k] for k in s.argmax(0)]
            text_row[f"zeroshot_{task}"] = float(
                np.mean(np.asarray(pred) == np.asarray(self.labels[task]))
            )
        rows["tag matching (TF-IDF on musicnn tags)"] = text_row
        return rows

    def musicbert_row(self, checkpoint: Path) -> dict[str, float]:
        run = MusicBertRun(checkpoint)
        c = self.cache
        concepts = c.tag_probs.astype(np.float32)
        pooled, audio_emb = run.audio(
            [c.item_patches(i) for i in self.clips], concepts[list(self.clips)]
        )
        seg_a = seg_b = None
        if self.tracks:
            # each half keeps the whole recording's concepts: the cache holds no finer ones
            halves = [_halves(c.item_patches(i)) for i in self.tracks]
            seg_a = run.audio([h[0] for h in halves], concepts[list(self.tracks)])[0]
            seg_b = run.audio([h[1] for h in halves], concepts[list(self.tracks)])[0]
        row = self.probe_row(pooled, seg_a, seg_b)
        text_emb = run.text(self.query_states)
        row.update(retrieval_metrics(text_emb @ audio_emb.T))
        for task, (names, _texts, states) in self.prompts().items():
            s = run.text(states) @ audio_emb.T
            pred = [names[k] for k in s.argmax(0)]
            row[f"zeroshot_{task}"] = float(
                np.mean(np.asarray(pred) == np.asarray(self.labels[task]))
            )
        return row


def _mean_std(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    keys = sorted(set().union(*rows))
    return {
        k: {
            "mean": float(np.mean([r[k] for r in rows if k in r])),
            "std": float(np.std([r[k] for r in rows if k in r])),
            "n": sum(k in r for r in rows),
        }
        for k in keys
    }


def evaluate(cache_dir: Path, runs_dir: Path, split: str = "test") -> dict:
    """All rows on ``split``; MusicBERT rows from ``runs_dir/<objective>_s<seed>/final``."""
    cache = load_cache(cache_dir)
    ev = Evaluation(cache, split)
    result = {
        "split": split,
        "clips": len(ev.clips),
        "tracks": len(ev.tracks),
        "pieces": len(set(ev.groups)),
        "rows": {},
    }
    for name, row in ev.baseline_rows().items():
        result["rows"][name] = {k: {"mean": v, "std": 0.0, "n": 1} for k, v in row.items()}
    for objective, label in OBJECTIVE_ROWS:
        finals = sorted(Path(runs_dir).glob(f"{objective}_s*/final"))
        if not finals:
            continue
        per_seed = [ev.musicbert_row(f) for f in finals]
        result["rows"][label] = _mean_std(per_seed)
        result["rows"][label]["_runs"] = [str(f) for f in finals]
    return result


COLUMNS = (
    ("family/svm", "instrument SVM"),
    ("family/logreg", "instrument LR"),
    ("tempo_class/svm", "tempo SVM"),
    ("style/svm", "style SVM"),
    ("style/logreg", "style LR"),
    ("track_id/nn", "track ID"),
    ("R@1", "T2M R@1"),
    ("R@5", "R@5"),
    ("R@10", "R@10"),
    ("median_rank", "med. rank"),
    ("zeroshot_family", "0-shot instr."),
    ("zeroshot_tempo_class", "0-shot tempo"),
)


def markdown_table(result: dict) -> str:
    head = "| representation | " + " | ".join(c[1] for c in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for name, row in result["rows"].items():
        cells = []
        for key, _ in COLUMNS:
            cell = row.get(key)
            if not isinstance(cell, dict):
                cells.append("–")
            elif key == "median_rank":
                cells.append(
                    f"{cell['mean']:.1f}" + (f" ± {cell['std']:.1f}" if cell["n"] > 1 else "")
                )
            else:
                cells.append(
                    f"{cell['mean']:.2f}" + (f" ± {cell['std']:.2f}" if cell["n"] > 1 else "")
                )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def report(
    cache: Path,
    runs: Path,
    split: str = "test",
    out: Path = Path("benchmarks/results/training_eval.json"),
    markdown: Path | None = None,
    as_json: bool = False,
) -> str:
    """Evaluate the runs in ``runs`` on ``cache``'s ``split``, write the JSON to ``out``
    (and the Markdown table to ``markdown``), and return what to print: the table, or
    the JSON with ``as_json``."""
    result = evaluate(Path(cache).expanduser(), Path(runs).expanduser(), split)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    table = markdown_table(result)
    if markdown:
        Path(markdown).write_text(table)
    return json.dumps(result) if as_json else table
