"""Pseudo-captions: musicnn's tag probabilities written out as words.

MusicBERT's text side must learn musicnn's tag vocabulary ("mellow", "female
vocals", "harpsichord") and, through MiniLM, its paraphrases. For audio with no
human description, the most probable MSD and MTT tags become a short caption
("classical, piano, slow, soft"). Synonymous spellings of the two models are
folded (``musicbert.tagger.canonical_tag``) and the strongest score of a name wins.
"""

from __future__ import annotations

import numpy as np

from musicbert.errors import MusicBertError
from musicbert.musicnn import TAGS

# decade tags say when a song was popular, not what it sounds like; keep them out
_SKIP = {"00s", "90s", "80s", "70s", "60s", "oldies"}


class CaptionError(MusicBertError):
    """Tag probabilities that cannot be captioned (wrong shape, NaN)."""


def ranked_tags(tag_probs: dict[str, np.ndarray]) -> list[tuple[str, float]]:
    """(canonical tag name, probability) of both models, merged and sorted, best first."""
    from musicbert.tagger import canonical_tag

    best: dict[str, float] = {}
    for model, probs in tag_probs.items():
        if model not in TAGS:
            raise CaptionError(f"unknown tagger {model!r}; expected one of {', '.join(TAGS)}")
        probs = np.asarray(probs, dtype=np.float64)
        if probs.shape != (len(TAGS[model]),) or not np.isfinite(probs).all():
            raise CaptionError(f"{model}: expected 50 finite probabilities, got {probs.shape}")
        for name, p in zip(TAGS[model], probs, strict=True):
            key = canonical_tag(name)
            if key in _SKIP:
                continue
            best[key] = max(best.get(key, 0.0), float(p))
    return sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))


def pseudo_caption(
    tag_probs: dict[str, np.ndarray], max_tags: int = 5, min_probability: float = 0.1
) -> str:
    """Comma-separated most probable tags; at least the single best one.

    >>> import numpy as np
    >>> p = np.zeros(50); p[TAGS["MTT_musicnn"].index("piano")] = 0.9
    >>> p[TAGS["MTT_musicnn"].index("slow")] = 0.5
    >>> pseudo_caption({"MTT_musicnn": p})
    'piano, slow'
    """
    ranked = ranked_tags(tag_probs)
    if not ranked:
        raise CaptionError("no tag probabilities to caption")
    chosen = [name for name, p in ranked[:max_tags] if p >= min_probability]
    return ", ".join(chosen or [ranked[0][0]])
