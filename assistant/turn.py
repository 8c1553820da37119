"""The data that flows through one chat turn: a parse in, a reply out.

These are the contracts between the NLU, the dialogue policy, the QA engine and
the front-ends (terminal, voice, Rasa bridge). Plain dataclasses so that each
converts to JSON with ``asdict``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Entity:
    """A span of the utterance: ``text[start:end]`` normalised to ``value``."""

    entity: str  # one of the domain's entity names (artist, track, mood, ...)
    value: str
    start: int
    end: int
    confidence: float = 1.0
    extractor: str = "gazetteer"


@dataclass
class Parse:
    """What the NLU made of one utterance."""

    text: str
    intent: str
    confidence: float
    entities: list[Entity] = field(default_factory=list)
    ranking: list[tuple[str, float]] = field(default_factory=list)

    def first(self, entity: str) -> str | None:
        """The value of the first entity of this name, if any."""
        return next((e.value for e in self.entities if e.entity == entity), None)

    def values(self, entity: str) -> list[str]:
        return [e.value for e in self.entities if e.entity == entity]


@dataclass
class TrackRef:
    """A track as shown to a person, with why it was chosen."""

    id: int
    title: str
    artist: str | None = None
    album: str | None = None
    duration: float | None = None
    score: float | None = None
    why: str | None = None


@dataclass
class Reply:
    """The assistant's answer to one turn; every fact in ``text`` comes from the data."""

    text: str
    parse: Parse | None = None
    tracks: list[TrackRef] = field(default_factory=list)
    action: str | None = None  # name of the action that produced it
    data: dict[str, Any] = field(default_factory=dict)  # structured facts, for --json

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if self.parse is not None:
            out["intent"] = self.parse.intent
            out["entities"] = out["parse"]["entities"]
        return out
