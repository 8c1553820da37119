"""Lexical evidence for ranking: does a track carry the tags and words a query names?

The shared space ranks by what a clip sounds like; a track's stored tags (from its
files, the user, or musicnn with its confidence) and its metadata are evidence of
another kind. The final score of a search is ``shared-space cosine + LEXICAL_WEIGHT x
tag evidence + TITLE_WEIGHT x title-word evidence`` (``fuse``); a query that names
no known tag and no title word is ranked by the shared space alone. The weights
were chosen on the real-music dev set (``benchmarks/real_music.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np

from musicbert.vocabulary import COMMAND_WORDS, FILLER_WORDS, tags_in

LEXICAL_WEIGHT = 0.3
TITLE_WEIGHT = 0.1
_STOP = FILLER_WORDS | COMMAND_WORDS


def tag_confidences(tags: Iterable[tuple[str, float]]) -> dict[str, float]:
    """canonical tag -> the best confidence of any stored tag naming it ("Death Metal" -> metal)."""
    out: dict[str, float] = {}
    for name, confidence in tags:
        for tag in tags_in(name):
            out[tag] = max(out.get(tag, 0.0), float(confidence))
    return out


def tag_evidence(query: str, tracks: list[Mapping[str, float]]) -> np.ndarray:
    """Per track, the mean confidence over the tags the query names (0 where none is named).

    ``tracks`` holds each track's ``tag_confidences``.
    """
    wanted = tags_in(query)
    out = np.zeros(len(tracks), np.float32)
    if not wanted:
        return out
    for i, confidences in enumerate(tracks):
        out[i] = sum(confidences.get(t, 0.0) for t in wanted) / len(wanted)
    return out


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"\w+", text.casefold()) if w not in _STOP and len(w) > 2}


def title_evidence(query: str, titles: list[str]) -> np.ndarray:
    """Per track, the share of the query's content words found in its title."""
    wanted = _words(query)
    out = np.zeros(len(titles), np.float32)
    if not wanted:
        return out
    for i, title in enumerate(titles):
        out[i] = len(wanted & _words(title or "")) / len(wanted)
    return out


def fuse(
    model_scores: np.ndarray, tags: np.ndarray, titles: np.ndarray | None = None
) -> np.ndarray:
    """The final ranking score: shared space plus weighted lexical evidence."""
    score = np.asarray(model_scores, np.float32) + LEXICAL_WEIGHT * tags
    if titles is not None:
        score = score + TITLE_WEIGHT * titles
    return score
