"""The result of answering one question, before it becomes a ``Reply``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Why a question could not be answered; the benchmark checks these for "I don't know" items.
REASONS = (
    "no_track",  # the named track is not in the library
    "ambiguous",  # more than one track has that name
    "no_analysis",  # the track has not been analysed (or the analysis found nothing)
    "low_confidence",  # the models are unsure
    "no_score",  # a score question about a track that was not rendered from a score
    "no_concept",  # a concept missing from the glossary
    "no_match",  # a list / aggregate question that nothing matches
    "not_understood",  # the question itself could not be read
)


@dataclass
class Answer:
    text: str
    value: Any = None
    known: bool = True
    reason: str | None = None
    confidence: float | None = None
    hedged: bool = False
    track_ids: list[int] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    suggestions: list[str] = field(default_factory=list)


def dont_know(reason: str, text: str, **kw: Any) -> Answer:
    """An honest "I don't know", with the reason a person can act on."""
    return Answer(text=f"I don't know: {text}", known=False, reason=reason, **kw)
