"""A tiny feature cache with the real on-disk format, for the training tests.

The vectors are random but structured (each item's patches and texts share a
class direction), so losses can fall and probes can do better than chance
without running musicnn or MiniLM; the format is exactly what
``training.features.assemble`` writes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.features import TAG_NAMES, FeatureCache, Item, save_cache


def tiny_cache(path: Path, n_items: int = 24, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    families = ["piano", "organ", "strings"]
    centres = rng.normal(size=(len(families), 200))
    text_centres = rng.normal(size=(len(families), 384))
    items, patches, texts, states, offsets = [], [], [], [], [0]
    row = 0
    for i in range(n_items):
        fam = i % len(families)
        n = 2 + i % 4
        patches.append((centres[fam] + 0.5 * rng.normal(size=(n, 200))).astype(np.float16))
        t = len(texts)
        texts.append(f"music played on {families[fam]} number {i}")
        tok = 3 + i % 5
        states.append((text_centres[fam] + 0.5 * rng.normal(size=(tok, 384))).astype(np.float16))
        offsets.append(offsets[-1] + tok)
        split = "test" if i % 3 == 0 else "train"
        labels = {
            "family": families[fam],
            "tempo_class": ["slow", "fast"][i % 2],
            "style": ["a", "b"][(i // 2) % 2],
            "collection": "c",
            "register": "middle",
            "piece": f"piece{i // 2}",
            "instrument": families[fam],
        }
        target = np.zeros(len(TAG_NAMES))
        target[fam] = 1.0
        items.append(Item(f"clip{i}", "corpus", split, labels, row, n, [t], t, target.tolist()))
        row += n
    cache = FeatureCache(
        items=items,
        patches=np.concatenate(patches),
        tag_probs=rng.uniform(size=(n_items, 100)).astype(np.float16),
        mfcc=rng.normal(size=(n_items, 40)).astype(np.float32),
        mfcc_segments={
            "a": rng.normal(size=(n_items, 40)).astype(np.float32),
            "b": rng.normal(size=(n_items, 40)).astype(np.float32),
        },
        texts=texts,
        text_offsets=np.asarray(offsets, np.int64),
        text_states=np.concatenate(states),
    )
    return save_cache(cache, path / "cache.npz")
