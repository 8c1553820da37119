"""One function per dialogue action; the in-process policy and the Rasa bridge share them.

Each action reads the parse and the dialogue state, does one thing with the
catalog, the search engine, the QA engine or the player, updates the state and
returns a ``Reply``. Every title, name and number in a reply is read from the
catalog; when something is missing the reply says so instead of guessing.
"""

from __future__ import annotations

from assistant.actions.confirm import affirm, deny, reject, select_item
from assistant.actions.context import Action, ActionContext
from assistant.actions.finding import more_like_this, play_music, recommend, search_music
from assistant.actions.journeys import play_history, song_path
from assistant.actions.playback import playback_control
from assistant.actions.playlists import (
    playlist_add,
    playlist_create,
    playlist_delete,
    playlist_export,
)
from assistant.actions.questions import answer_question
from assistant.actions.refining import refine
from assistant.actions.talk import goodbye, greet, help_, out_of_scope, thank
from assistant.qa.questions import QA_INTENTS

ACTIONS: dict[str, Action] = {
    "greet": greet,
    "goodbye": goodbye,
    "thank": thank,
    "help": help_,
    "out_of_scope": out_of_scope,
    "play_music": play_music,
    "recommend": recommend,
    "search_music": search_music,
    "more_like_this": more_like_this,
    "refine": refine,
    "playback_control": playback_control,
    "playlist_add": playlist_add,
    "playlist_create": playlist_create,
    "playlist_delete": playlist_delete,
    "affirm": affirm,
    "deny": deny,
    "select_item": select_item,
    "reject": reject,
    "playlist_export": playlist_export,
    "song_path": song_path,
    "play_history": play_history,
    **{intent: answer_question for intent in QA_INTENTS},
}

__all__ = ["ACTIONS", "Action", "ActionContext"]
