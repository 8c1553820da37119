"""The Rasa bridge: the same actions served to a Rasa server by rasa_sdk.

Each custom action in domain.yml (``action_play_music``, ...) is an rasa_sdk
``Action`` that rebuilds the dialogue state from the tracker's slots, runs the
same policy and action function as the in-process assistant
(``assistant.dialogue.respond``), utters the reply (tracks in the custom
payload) and sets the slots back. ``serve`` runs rasa_sdk's HTTP endpoint
(``POST /webhook``) in this process on loopback.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher

from assistant.actions import ACTIONS, ActionContext
from assistant.nlu import parse_from_rasa
from assistant.state import DialogueState

log = logging.getLogger(__name__)

#: domain.yml custom action -> intent it answers
ACTION_INTENTS = {f"action_{intent}": intent for intent in ACTIONS if intent in {
    "play_music", "recommend", "search_music", "more_like_this", "refine", "playback_control",
    "ask_track_info", "ask_content", "ask_stats", "ask_concept", "describe_track",
    "playlist_add", "playlist_create", "playlist_delete", "compare_tracks", "select_item",
    "reject", "affirm", "deny",
}}  # fmt: skip


class Backend:
    """Catalog, model, search and QA, built once on the first action and shared."""

    _lock = threading.Lock()
    _ctx: ActionContext | None = None
    db_url: str | None = None

    @classmethod
    def configure(cls, db_url: str | None = None, ctx: ActionContext | None = None) -> None:
        cls.db_url, cls._ctx = db_url, ctx

    @classmethod
    def context(cls) -> ActionContext:
        with cls._lock:
            if cls._ctx is None:
                from assistant.dialogue import build_qa, build_search
                from assistant.model_loader import load_embedder
                from assistant.nlu.rasa_format import load_domain
                from catalog.db import open_catalog

                catalog = open_catalog(cls.db_url)
                embedder = load_embedder(None, catalog)
                problems: list[str] = []
                cls._ctx = ActionContext(
                    catalog=catalog,
                    search=build_search(catalog, embedder, problems),
                    qa=build_qa(catalog, embedder, problems=problems),
                    problems=problems,
                    domain=load_domain(),
                    embedder=embedder,
                    source="rasa",
                )
            return cls._ctx


class MusicAction(Action):
    """One domain action; ``intent`` says which in-process action it runs."""

    intent = ""

    def name(self) -> str:
        return f"action_{self.intent}"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        from assistant.dialogue import respond

        message = tracker.latest_message or {}
        parse = parse_from_rasa(str(message.get("text") or ""), message)
        parse.intent = self.intent  # Rasa's policy picked this action for the turn
        state = DialogueState.from_slots(tracker.current_slot_values())
        reply = respond(Backend.context(), state, parse)
        dispatcher.utter_message(
            text=reply.text,
            json_message={
                "action": reply.action,
                "tracks": [asdict(t) for t in reply.tracks],
                "data": _jsonable(reply.data),
            },
        )
        return [SlotSet(name, value) for name, value in state.to_slots().items()]


def _jsonable(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str))


def action_classes() -> list[type[MusicAction]]:
    """One ``MusicAction`` subclass per custom action of the domain."""
    return [
        type(f"Action_{intent}", (MusicAction,), {"intent": intent, "__module__": __name__})
        for intent in ACTION_INTENTS.values()
    ]


def executor() -> ActionExecutor:
    ex = ActionExecutor()
    for cls in action_classes():
        ex.register_action(cls)
    return ex


def serve(host: str = "127.0.0.1", port: int = 5055, db_url: str | None = None) -> None:
    """Run the action server until interrupted (one process, so one shared backend)."""
    from rasa_sdk.endpoint import create_app

    Backend.configure(db_url)
    app = create_app(executor(), cors_origins=None)
    app.run(host=host, port=port, single_process=True, motd=False, access_log=False)
