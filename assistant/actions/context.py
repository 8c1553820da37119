"""What every action works with: the catalog, search, QA, the player, the domain texts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from assistant.state import DialogueState
from assistant.turn import Parse, Reply

if TYPE_CHECKING:  # the parts are built elsewhere; actions only use them
    from assistant.nlu.rasa_format import Domain
    from assistant.player import Player
    from assistant.qa import QAEngine
    from catalog.db import Catalog
    from catalog.search import SearchEngine
    from musicbert.embedder import Embedder

#: How many tracks a request gets when it does not say, and the most it may ask for.
DEFAULT_RESULTS = 5
MAX_RESULTS = 20


@dataclass
class ActionContext:
    """What actions work with; built once per assistant."""

    catalog: Catalog
    search: SearchEngine | None = None  # None when it could not be built (see problems)
    qa: QAEngine | None = None
    player: Player | None = None  # None without sound
    domain: Domain | None = None  # the response texts
    embedder: Embedder | None = None
    source: str = "chat"  # recorded in PlayHistory
    notes: list[str] = field(default_factory=list)
    #: Why a part (search, QA) could not be built, in words for the person.
    problems: list[str] = field(default_factory=list)

    def response(self, name: str, fallback: str) -> str:
        """The domain's text for ``name``; a domain without it is a broken domain file."""
        return self.domain.response(name) if self.domain is not None else fallback

    def no_search(self, what: str) -> str:
        """Why ``what`` cannot be done without search: the real cause when there is one."""
        cause = next((p for p in self.problems if p.startswith("search")), None)
        if cause:
            return f"I can't {what}: {cause}"
        return (
            f"I can't {what}: the library has no MusicBERT vectors yet "
            "(run `musicbert ingest` with the model, or `musicbert reindex`)."
        )


Action = Callable[[ActionContext, Parse, DialogueState], Reply]
