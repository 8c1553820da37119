"""Which musicnn genre tags may be shown to people, and from what confidence.

musicnn was trained on commercial pop (MSD) and MagnaTagATune; on other music some
of its genre tags fire on the wrong things (game soundtracks tagged "indie",
renders tagged "jazz"). The real-music dev set (``training.real_corpus``) has clips
whose genre is known without listening (metal, electronic, classical). A genre tag
that names none of a clip's genre or its close relatives is a false alarm there;
a tag is shown only from the confidence that no more than 5% of such clips reach
(and never below ``FLOOR``). Tags the dev set cannot contradict (moods,
instruments) keep the floor. The result is ``musicbert/tag_trust.json``, read by
``musicbert.tagger.trusted``.

Run: ``musicbert tag-trust --cache DIR``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from musicbert.musicnn import TAGS
from musicbert.tagger import TRUST_FILE, canonical_tag, tag_kind

FLOOR = 0.2
FALSE_ALARMS = 0.05
#: genre tags that describe music of each dev genre without being wrong
RELATIVES = {
    "metal": {"metal", "heavy metal", "hard rock", "rock", "punk", "alternative",
              "alternative rock", "progressive rock", "classic rock"},
    "electronic": {"electronic", "electro", "techno", "house", "dance", "experimental",
                   "ambient", "new age"},
    "classical": {"classical", "opera", "ambient", "new age", "experimental"},
    "jazz": {"jazz", "blues", "soul", "funk", "rnb", "easy listening"},
}  # fmt: skip


def thresholds(tag_probs: np.ndarray, genres: list[str]) -> dict[str, float]:
    """canonical tag -> the confidence from which it may be shown."""
    names = list(TAGS["MSD_musicnn"]) + list(TAGS["MTT_musicnn"])
    out: dict[str, float] = {}
    for column, name in enumerate(names):
        key = canonical_tag(name)
        threshold = FLOOR
        if tag_kind(name) == "genre":
            wrong = [g for g in genres if key not in RELATIVES.get(g, {key})]
            mask = np.array([g in wrong for g in genres])
            if mask.any():
                worst = float(np.quantile(tag_probs[mask, column], 1 - FALSE_ALARMS))
                threshold = max(threshold, worst)
        out[key] = round(max(out.get(key, 0.0), threshold), 3)
    return out


def write_thresholds(cache_dir: Path, out: Path = TRUST_FILE) -> dict[str, float]:
    """Compute the thresholds on ``cache_dir``'s real-music dev clips and write them to
    ``out``; returns the tags that need more than ``FLOOR``."""
    from training.features import load_cache
    from training.real_corpus import dev_labels

    cache = load_cache(cache_dir)
    labels = dev_labels(cache)
    index = sorted(labels)
    table = thresholds(cache.tag_probs[index].astype(np.float64), [labels[i] for i in index])
    counts = {g: sum(1 for i in index if labels[i] == g) for g in sorted(set(labels.values()))}
    Path(out).write_text(
        json.dumps({"dev_clips": counts, "false_alarms": FALSE_ALARMS, "thresholds": table},
                   indent=1, sort_keys=True) + "\n"
    )  # fmt: skip
    return {k: v for k, v in table.items() if v > FLOOR}
