"""Playback control: pause, resume, skip, volume, what is playing."""

from __future__ import annotations

from assistant.actions.context import ActionContext
from assistant.actions.replies import make_reply
from assistant.state import DialogueState
from assistant.turn import Parse, Reply


def playback_control(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    action = "action_playback_control"
    control = parse.first("control")
    if control is None:
        return make_reply(
            "Say pause, resume, stop, next, previous, volume up or volume down.", parse, action
        )
    if ctx.player is None:
        return make_reply(
            f"There is no audio output in this session, so I can't {control.replace('_', ' ')}.",
            parse,
            action,
        )
    method = getattr(ctx.player, control, None)
    if method is None:
        return make_reply(f"I don't know how to {control}.", parse, action)
    status = method()
    item = getattr(status, "item", None)
    if item is not None:
        state.current_track_id = item.track_id
    words = {
        "pause": "Paused.",
        "resume": "Playing again.",
        "stop": "Stopped.",
        "volume_up": f"Volume {round(getattr(status, 'volume', 0) * 100)}%.",
        "volume_down": f"Volume {round(getattr(status, 'volume', 0) * 100)}%.",
    }
    text = words.get(control) or (f"Now playing “{item.title}”." if item else "The queue is done.")
    return make_reply(text, parse, action)
