"""Answers to the assistant's own questions: yes, no, "the second one", "not that"."""

from __future__ import annotations

from sqlalchemy import delete

from assistant.actions.context import ActionContext
from assistant.actions.finding import find_music, more_like_this, queue_tracks
from assistant.actions.playlists import add_to_playlist
from assistant.actions.questions import answer_question, describe_by_id
from assistant.actions.replies import make_reply, number_said, track_refs
from assistant.state import DialogueState
from assistant.turn import Parse, Reply
from catalog.models import Playlist


def affirm(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    action = "action_affirm"
    pending, state.pending = state.pending, None
    if pending is None or pending.kind != "confirm":
        return make_reply("OK. What would you like to hear?", parse, action)
    if pending.then == "delete_playlist":
        with ctx.catalog.session() as s:
            gone = s.execute(delete(Playlist).where(Playlist.id == pending.payload.get("id")))
        if (
            state.playlist
            and state.playlist.casefold() == str(pending.payload.get("name")).casefold()
        ):
            state.playlist = None
        if not gone.rowcount:
            return make_reply(
                f"The playlist “{pending.payload.get('name')}” was already gone.", parse, action
            )
        return make_reply(f"Deleted the playlist “{pending.payload.get('name')}”.", parse, action)
    return make_reply("OK.", parse, action)


def deny(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    pending, state.pending = state.pending, None
    if pending is not None and pending.then == "delete_playlist":
        return make_reply(
            f"OK, I kept the playlist “{pending.payload.get('name')}”.", parse, "action_deny"
        )
    if pending is not None:
        return make_reply("OK, never mind.", parse, "action_deny")
    return make_reply("OK.", parse, "action_deny")


def select_item(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    action = "action_select_item"
    pending = state.pending if state.pending and state.pending.kind == "choose" else None
    options = pending.options if pending else state.last_results
    if not options:
        return make_reply(
            "There is no list to choose from yet. Search or ask for music first.", parse, action
        )
    chosen = None
    n = number_said(parse)
    artist = parse.first("artist")
    if artist:
        for ref in track_refs(ctx, options):
            if ref.artist and artist.casefold() in ref.artist.casefold():
                chosen = ref.id
                break
    if chosen is None and n is not None:
        chosen = state.choose(n)
        if chosen is None:
            return make_reply(f"Pick a number from 1 to {len(options)}.", parse, action)
    if chosen is None and parse.first("number") is None and n is None:
        # "the 2005 one" and friends: match a year
        return make_reply(f"Which one? Pick a number from 1 to {len(options)}.", parse, action)
    if chosen is None:
        return make_reply(f"Pick a number from 1 to {len(options)}.", parse, action)
    state.pending = None
    then = pending.then if pending else "play"
    state.current_track_id = chosen
    if then == "playlist_add" and state.playlist:
        return add_to_playlist(ctx, parse, state, state.playlist, [chosen], action)
    if then == "describe":
        ref = track_refs(ctx, [chosen])[0]
        return (
            answer_question(ctx, Parse(f"describe {ref.title}", "describe_track", 1.0), state)
            if ctx.qa is None
            else describe_by_id(ctx, parse, state, chosen)
        )
    return queue_tracks(ctx, parse, state, [chosen], action)


def reject(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    action = "action_reject"
    current = state.current_track_id
    if current is None:
        return make_reply("Not what? Ask for some music first.", parse, action)
    if current not in state.rejected:
        state.rejected.append(current)
    left = [i for i in state.last_results if i not in state.rejected]
    if left:
        return queue_tracks(ctx, parse, state, [left[0]], action, intro="OK, not that one.")
    if state.last_query or state.filters:
        found = find_music(
            ctx, parse, state, action, query=state.last_query or "", filters=dict(state.filters)
        )
        if found.tracks:
            return queue_tracks(
                ctx, parse, state, [found.tracks[0].id], action, intro="OK, not that one."
            )
    if ctx.search is not None:
        reply = more_like_this(ctx, Parse(parse.text, "more_like_this", 1.0), state)
        if reply.tracks:
            return queue_tracks(
                ctx, parse, state, [reply.tracks[0].id], action, intro="OK, not that one."
            )
    state.current_track_id = None
    return make_reply(
        "OK, not that one. I have nothing else lined up; ask me for something.", parse, action
    )
