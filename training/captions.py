"""Pseudo-captions: musicnn's tag probabilities written out as words.

MusicBERT's text side must learn musicnn's tag vocabulary ("mellow", "female
vocals", "harpsichord") and, through MiniLM, its paraphrases. For audio with no
human description, the most probable MSD and MTT tags become a short caption
("classical, piano, slow, soft"). Synonymous spellings of the two models are
folded and the strongest score of a name wins (``musicbert.tagger.merge_tags``, the
policy the embedder's tags follow at run time).
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
    """(canonical tag name, probability) of both models, best first, decades left out.

    Merged as the embedder merges a track's tags at run time (``merge_tags``).
    """
    from musicbert.tagger import merge_tags

    checked = {}
    for model, probs in tag_probs.items():
        if model not in TAGS:
            raise CaptionError(f"unknown tagger {model!r}; expected one of {', '.join(TAGS)}")
        probs = np.asarray(probs, dtype=np.float64)
        if probs.shape != (len(TAGS[model]),) or not np.isfinite(probs).all():
            raise CaptionError(f"{model}: expected 50 finite probabilities, got {probs.shape}")
        checked[model] = probs
    return [(t.name, t.confidence) for t in merge_tags(checked) if t.name not in _SKIP]


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


# --------------------------------------------------------------------------- natural text

#: how people ask; "{}" is a description such as "calm jazz with piano"
_REQUESTS = (
    "{}",
    "{}",
    "{} music",
    "play some {}",
    "play something {}",
    "put on {}",
    "I want to hear {}",
    "find {} music",
    "a {} track",
    "songs that are {}",
)


def tag_prior(tag_probs: np.ndarray) -> np.ndarray:
    """Mean probability of each of the 100 tags (MSD then MTT) over a corpus: the base rate."""
    return np.asarray(tag_probs, np.float64).mean(0)


def distinctive_tags(
    probs: np.ndarray, prior: np.ndarray, top: int = 6, min_probability: float = 0.08
) -> list[tuple[str, float]]:
    """(canonical tag, lift) of a clip's tags that stand out against the corpus base rate.

    musicnn gives "rock" or "electronic" some probability for almost anything; what a
    person would say of a clip is what is unusually probable for it. Ranked by
    probability times lift over the prior; tags below ``min_probability`` never count.
    """
    from musicbert.tagger import canonical_tag

    names = list(TAGS["MSD_musicnn"]) + list(TAGS["MTT_musicnn"])
    probs = np.asarray(probs, np.float64)
    best: dict[str, float] = {}
    for name, p, base in zip(names, probs, prior, strict=True):
        if p < min_probability:
            continue
        score = p * (p / max(base, 1e-3))
        key = canonical_tag(name)
        best[key] = max(best.get(key, 0.0), score)
    ranked = sorted(best.items(), key=lambda kv: -kv[1])
    return ranked[:top]


def _pick(rng, phrases: tuple[str, ...]) -> str:
    # the tag's own name half the time, a paraphrase otherwise
    return phrases[0] if rng.random() < 0.5 else phrases[int(rng.integers(len(phrases)))]


def natural_captions(
    probs: np.ndarray,
    prior: np.ndarray,
    rng: np.random.Generator,
    n: int = 6,
    metadata: str | None = None,
) -> list[str]:
    """``n`` short descriptions of a clip in words people use, from its distinctive tags.

    Mixes bare queries ("chill hip hop"), requests ("play some calm piano") and fuller
    sentences ("a mellow jazz track with piano, no vocals"); a sentence from the
    clip's own metadata is appended when given.
    """
    from musicbert.vocabulary import ERAS, GENRES, INSTRUMENTS, MOODS, PHRASES

    ranked = [t for t, _ in distinctive_tags(probs, prior)]
    if not ranked:
        ranked = [ranked_tags_100(probs)[0]]
    genres = [t for t in ranked if t in GENRES]
    moods = [t for t in ranked if t in MOODS]
    instruments = [t for t in ranked if t in INSTRUMENTS]
    eras = [t for t in ranked if t in ERAS]
    out: list[str] = []
    for _ in range(n):
        parts: list[str] = []
        if moods and rng.random() < 0.6:
            parts.append(_pick(rng, PHRASES[moods[int(rng.integers(min(2, len(moods))))]]))
        if genres:
            g = genres[0] if rng.random() < 0.7 else genres[int(rng.integers(len(genres)))]
            parts.append(_pick(rng, PHRASES[g]))
        core = " ".join(parts)
        extra = ""
        if instruments and (not core or rng.random() < 0.5):
            inst = _pick(rng, PHRASES[instruments[int(rng.integers(min(2, len(instruments))))]])
            extra = inst if not core else f"with {inst}"
        if eras and rng.random() < 0.15:
            extra = (extra + " " if extra else "") + f"from the {_pick(rng, PHRASES[eras[0]])}"
        text = " ".join(p for p in (core, extra) if p) or _pick(rng, PHRASES[ranked[0]])
        template = _REQUESTS[int(rng.integers(len(_REQUESTS)))]
        out.append(template.format(text))
    if metadata:
        out.append(metadata)
    return list(dict.fromkeys(out))


def ranked_tags_100(probs: np.ndarray) -> list[str]:
    """Canonical tag names of the 100 probabilities (MSD then MTT), most probable first."""
    probs = np.asarray(probs, np.float64)
    return [t for t, _ in ranked_tags({"MSD_musicnn": probs[:50], "MTT_musicnn": probs[50:]})]


class CaptionBank:
    """Human captions (MusicCaps) borrowed for a clip when their aspects agree with its tags.

    Each caption's aspect list is read with ``musicbert.vocabulary.tags_in``; a clip
    may borrow a caption when at least two of the caption's tags are among the clip's
    distinctive tags and none of them contradicts it (is improbable for the clip).
    """

    def __init__(self, rows: list[tuple[str, set[str]]]) -> None:
        self.rows = [(caption, tags) for caption, tags in rows if len(tags) >= 2]

    @classmethod
    def load(cls, csv_path) -> CaptionBank:
        import ast
        import csv

        from musicbert.vocabulary import tags_in

        rows = []
        with open(csv_path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                try:
                    aspects = ast.literal_eval(row["aspect_list"])
                except (ValueError, SyntaxError):
                    continue
                tags = set().union(*(tags_in(a) for a in aspects)) if aspects else set()
                caption = " ".join(row["caption"].split()[:60])  # MiniLM reads ~256 tokens
                rows.append((caption, tags))
        return cls(rows)

    def borrow(
        self, distinctive: set[str], improbable: set[str], rng: np.random.Generator, k: int = 2
    ) -> list[str]:
        scored = []
        for caption, tags in self.rows:
            if tags & improbable:
                continue
            overlap = len(tags & distinctive)
            if overlap >= 2:
                scored.append((overlap / len(tags), caption))
        if not scored:
            return []
        scored.sort(key=lambda sc: -sc[0])
        pool = [c for _, c in scored[: max(k * 10, 20)]]
        picks = rng.choice(len(pool), size=min(k, len(pool)), replace=False)
        return [pool[int(i)] for i in picks]
