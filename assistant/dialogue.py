"""The assistant: one turn in, one grounded reply out.

``Assistant.handle(text)`` parses the utterance, lets a pending question
(which of two "Victory" tracks? really delete?) take the answer first, then
runs the intent's action (``assistant.actions``) against the catalog, search,
QA and player, remembering what was said in ``state`` for the next turn.
"""

from __future__ import annotations

import logging

from assistant.actions import ACTIONS, ActionContext
from assistant.state import DialogueState
from assistant.turn import Parse, Reply
from musicbert.errors import MusicBertError

log = logging.getLogger(__name__)

#: After a question, these intents answer it; anything else drops the question.
_ANSWERS = {
    "choose": {"select_item", "deny", "reject"},
    "confirm": {"affirm", "deny"},
}
EMPTY_REPLY = "I didn't catch anything. Say 'help' for examples of what I can do."


class Assistant:
    """Conversation over one catalog; cheap per turn once built."""

    def __init__(self, catalog, embedder=None, nlu=None, player=None, qa=None, search=None):
        from assistant.nlu.rasa_format import load_domain

        self.catalog = catalog
        self.embedder = embedder
        if nlu is None:
            from assistant.nlu import NLU

            nlu = NLU.load(catalog=catalog, embedder=embedder)
        self.nlu = nlu
        self.player = player
        #: Parts that could not be built, and why, in words for the person.
        self.problems: list[str] = []
        if embedder is not None:  # the contract's short form: build what was not given
            qa = qa if qa is not None else build_qa(catalog, embedder, nlu, self.problems)
            if search is None:
                search = build_search(catalog, embedder, self.problems)
        self.state = DialogueState()
        if player is not None and hasattr(player, "on_track_end"):
            player.on_track_end = self._track_ended  # completions and skips, in the history
        self.ctx = ActionContext(
            catalog=catalog,
            search=search,
            qa=qa,
            player=player,
            domain=load_domain(),
            embedder=embedder,
            problems=self.problems,
        )

    @property
    def qa(self):
        return self.ctx.qa

    @property
    def search(self):
        return self.ctx.search

    @classmethod
    def from_defaults(
        cls, db_url: str | None = None, player=None, nlu=None, checkpoint: str | None = None
    ) -> Assistant:
        """Open the catalog, load MusicBERT once and build NLU, search and QA on it."""
        from assistant.model_loader import load_embedder
        from catalog.db import open_catalog

        catalog = open_catalog(db_url)
        embedder = load_embedder(checkpoint, catalog)
        if nlu is None:
            from assistant.nlu import NLU

            nlu = NLU.load(catalog=catalog, embedder=embedder)
        return cls(catalog, embedder, nlu=nlu, player=player)

    def handle(self, text: str) -> Reply:
        """Answer one utterance; bad input gets a helpful reply, never an exception."""
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        if not text.strip():
            return Reply(EMPTY_REPLY, Parse(text, "out_of_scope", 0.0), action="utter_default")
        try:
            parse = self.nlu.parse(text)
        except MusicBertError as exc:
            return Reply(f"I couldn't understand that: {exc}", None, action="utter_default")
        return self.respond(parse)

    def respond(self, parse: Parse) -> Reply:
        """Run the action for an already parsed turn."""
        reply = respond(self.ctx, self.state, parse)
        if reply.action in _CHANGES_NAMES:
            self._refresh_names()
        return reply

    def _refresh_names(self) -> None:
        refresh = getattr(self.nlu, "refresh_names", None)
        if refresh is not None:
            refresh(self.catalog)

    def _track_ended(self, item, outcome: str, seconds: float) -> None:
        from catalog.history import record_outcome

        record_outcome(self.catalog, item.track_id, outcome, seconds, self.ctx.source)

    def close(self) -> None:
        if self.player is not None:
            self.player.close()
        self.catalog.close()


_CHANGES_NAMES = {
    "action_playlist_create",
    "action_playlist_add",
    "action_affirm",
    "action_select_item",
}


def respond(ctx: ActionContext, state: DialogueState, parse: Parse) -> Reply:
    """The policy: a pending question takes its answer first, then the intent's action runs.

    Shared by ``Assistant`` and the Rasa action server (whose state comes from slots).
    """
    pending = state.pending
    intent = parse.intent
    if pending is not None:
        if pending.kind == "choose" and intent not in _ANSWERS["choose"]:
            if parse.first("number") and intent not in ("playlist_add", "recommend"):
                intent = "select_item"  # "2" or "the 2005 one" answers the question
            else:
                state.pending = None
        elif pending.kind == "confirm" and intent not in _ANSWERS["confirm"]:
            state.pending = None
    action = ACTIONS.get(intent, ACTIONS["out_of_scope"])
    if intent != parse.intent:
        parse = Parse(parse.text, intent, parse.confidence, parse.entities, parse.ranking)
    try:
        reply = action(ctx, parse, state)
    except MusicBertError as exc:
        reply = Reply(f"Sorry, I couldn't do that: {exc}", parse, action=action.__name__)
    if reply.parse is None:
        reply.parse = parse
    return reply


def build_search(catalog, embedder, problems: list[str] | None = None):
    """A SearchEngine over the catalog, or None when it cannot be built.

    Why it could not (a corrupt index, a lock, a bad config) is added to ``problems``:
    the chat shows it at start and replies that need search repeat it.
    """
    if embedder is None:
        return None
    from catalog.search import SearchEngine

    try:
        return SearchEngine(catalog, embedder)
    except MusicBertError as exc:
        log.warning("search unavailable: %s", exc)
        if problems is not None:
            problems.append(f"search by sound is unavailable: {exc}")
        return None


def build_qa(catalog, embedder, nlu=None, problems: list[str] | None = None):
    """A QAEngine, or None with the reason added to ``problems`` (see ``build_search``)."""
    from assistant.qa import QAEngine

    try:
        return QAEngine(catalog, embedder, nlu=nlu)
    except MusicBertError as exc:
        log.warning("question answering unavailable: %s", exc)
        if problems is not None:
            problems.append(f"questions about the library are unavailable: {exc}")
        return None
