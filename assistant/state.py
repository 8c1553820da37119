"""What the conversation remembers between turns, so follow-ups can be resolved.

"play it", "what's its tempo?", "the second one", "more upbeat", "not that
one" all point at something said earlier: the current track, the last result
list, the active search, a question the assistant is waiting to have answered.
The same state travels to Rasa as slots (``to_slots`` / ``from_slots``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Pending:
    """A question the assistant asked and is waiting for an answer to.

    kind "choose": ``options`` are track ids, the person picks one ("the second one")
    and ``then`` names what to do with it (play, describe, ...).
    kind "confirm": a destructive step ``then`` waits for yes/no; ``payload`` says on what.
    """

    kind: str  # "choose" | "confirm"
    then: str  # the action to finish, e.g. "play" or "delete_playlist"
    options: list[int] = field(default_factory=list)
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class DialogueState:
    current_track_id: int | None = None
    last_results: list[int] = field(default_factory=list)
    #: The active search: its text and filter fields (artist, tag, year_min, ...).
    filters: dict[str, Any] = field(default_factory=dict)
    last_query: str | None = None
    playlist: str | None = None
    pending: Pending | None = None
    last_attribute: str | None = None
    rejected: list[int] = field(default_factory=list)

    def choose(self, number: int) -> int | None:
        """The result a person means by "the second one" (1-based; -1 is the last)."""
        items = self.pending.options if self.pending and self.pending.options else self.last_results
        if not items:
            return None
        if number == -1:
            return items[-1]
        if 1 <= number <= len(items):
            return items[number - 1]
        return None

    def to_slots(self) -> dict[str, Any]:
        """Rasa slot values (domain.yml); JSON-friendly."""
        return {
            "current_track": None if self.current_track_id is None else str(self.current_track_id),
            "last_results": [str(i) for i in self.last_results],
            "filters": {**self.filters, "rejected": list(self.rejected)},
            "playlist": self.playlist,
            "pending": asdict(self.pending) if self.pending else None,
            "last_attribute": self.last_attribute,
            "last_query": self.last_query,
        }

    @classmethod
    def from_slots(cls, slots: dict[str, Any]) -> DialogueState:
        """Rebuild the state from a tracker's slots; malformed values are ignored."""
        state = cls()
        state.current_track_id = _int(slots.get("current_track"))
        state.last_results = [i for i in map(_int, _list(slots.get("last_results"))) if i]
        filters = slots.get("filters")
        if isinstance(filters, str):
            try:
                filters = json.loads(filters)
            except json.JSONDecodeError:
                filters = None
        if isinstance(filters, dict):
            state.rejected = [i for i in map(_int, _list(filters.pop("rejected", []))) if i]
            state.filters = filters
        state.playlist = slots.get("playlist") if isinstance(slots.get("playlist"), str) else None
        pending = slots.get("pending")
        if isinstance(pending, dict) and pending.get("kind") and pending.get("then"):
            state.pending = Pending(
                str(pending["kind"]),
                str(pending["then"]),
                [i for i in map(_int, _list(pending.get("options"))) if i],
                dict(pending.get("payload") or {}),
            )
        for name in ("last_attribute", "last_query"):
            value = slots.get(name)
            setattr(state, name, value if isinstance(value, str) else None)
        return state


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _list(value: Any) -> list:
    return list(value) if isinstance(value, list | tuple) else []
