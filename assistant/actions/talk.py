"""Greetings, thanks, help and what the assistant cannot do: the domain's texts."""

from __future__ import annotations

from assistant.actions.context import Action, ActionContext
from assistant.actions.replies import make_reply
from assistant.state import DialogueState
from assistant.turn import Parse, Reply


def respond_with(name: str, fallback: str) -> Action:
    def action(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
        return make_reply(ctx.response(name, fallback), parse, name)

    action.__name__ = name
    return action


greet = respond_with("utter_greet", "Hi! What would you like to hear?")


goodbye = respond_with("utter_goodbye", "Goodbye.")


thank = respond_with("utter_thank", "You're welcome.")


help_ = respond_with("utter_help", "Try: play Battle Music, recommend something calm, pause.")


out_of_scope = respond_with("utter_out_of_scope", "Sorry, I can only help with your music.")
