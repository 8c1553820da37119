"""Playlists in the dialogue: create, add, delete, export (the SQL is catalog.playlists)."""

from __future__ import annotations

import re

from sqlalchemy import select

from assistant.actions.context import ActionContext
from assistant.actions.finding import build_query, find_music
from assistant.actions.names import track_named
from assistant.actions.replies import (
    PLURAL,
    ask_which,
    label,
    make_reply,
    number_said,
    track_refs,
)
from assistant.state import DialogueState, Pending
from assistant.turn import Parse, Reply
from catalog.models import Playlist
from catalog.playlists import find_playlist, playlist_name


def playlist_targets(
    ctx: ActionContext, parse: Parse, state: DialogueState
) -> tuple[list[int], str | None]:
    """Which tracks "this" / "these" / "the second one" / a title mean; or a problem."""
    track = parse.first("track")
    if track:
        ids, missing = track_named(ctx, track)
        if missing:
            return [], missing
        if len(ids) > 1:
            return ids, "ambiguous"
        return ids, None
    n = number_said(parse)
    if n is not None:
        chosen = state.choose(n)
        if chosen is None:
            return [], f"There is no result number {n}."
        return [chosen], None
    if PLURAL.search(parse.text) and state.last_results:
        return list(state.last_results), None
    if state.current_track_id is not None:
        return [state.current_track_id], None
    if state.last_results:
        return list(state.last_results), None
    return [], "Which track? Play or find something first."


def playlist_add(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    action = "action_playlist_add"
    name = parse.first("playlist") or state.playlist
    if not name:
        return make_reply(
            "Which playlist should I add it to? Say e.g. “add this to road trip”.", parse, action
        )
    ids, problem = playlist_targets(ctx, parse, state)
    if problem == "ambiguous":
        state.playlist = name
        return ask_which(ctx, parse, state, ids, "playlist_add", action)
    if problem:
        return make_reply(problem, parse, action)
    return add_to_playlist(ctx, parse, state, name, ids, action)


def add_to_playlist(ctx, parse, state, name: str, ids: list[int], action: str) -> Reply:
    from catalog.playlists import add_tracks

    pl_name, added, total, created = add_tracks(ctx.catalog, name, ids)
    state.playlist = pl_name
    refs = track_refs(ctx, added or ids)
    if not added:
        return make_reply(
            f"Already in “{pl_name}”: {', '.join(label(r) for r in refs)}.", parse, action, refs
        )
    what = label(refs[0]) if len(refs) == 1 else f"{len(refs)} tracks"
    made = f"Created the playlist “{pl_name}” and added" if created else "Added"
    where = "to it" if created else f"to “{pl_name}”"
    return make_reply(f"{made} {what} {where} ({total} in total).", parse, action, refs)


def playlist_create(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    action = "action_playlist_create"
    name = parse.first("playlist")
    if not name:
        return make_reply(
            "What should the playlist be called? Say “create a playlist called …”.", parse, action
        )
    with ctx.catalog.session() as s:
        if find_playlist(s, name) is not None:
            state.playlist = name
            return make_reply(f"There is already a playlist called “{name}”.", parse, action)
    ids = (
        list(state.last_results)
        if (PLURAL.search(parse.text) or re.search(r"\b(this|it)\b", parse.text, re.I))
        else []
    )
    if ids and not PLURAL.search(parse.text) and state.current_track_id:
        ids = [state.current_track_id]
    if build_query(parse) or parse.first("artist"):
        found = find_music(ctx, parse, state, action, k=10)
        ids = [r.id for r in found.tracks]
    if ids:
        return add_to_playlist(ctx, parse, state, name, ids, action)
    name = playlist_name(name)
    with ctx.catalog.session() as s:
        s.add(Playlist(name=name))
    state.playlist = name
    return make_reply(f"Created the empty playlist “{name}”.", parse, action)


def playlist_delete(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    action = "action_playlist_delete"
    name = parse.first("playlist") or state.playlist
    if not name:
        return make_reply("Which playlist should I delete?", parse, action)
    with ctx.catalog.session() as s:
        pl = find_playlist(s, name)
        if pl is None:
            names = list(s.scalars(select(Playlist.name).order_by(Playlist.name)))
        else:
            info = (pl.id, pl.name, len(pl.items))
    if pl is None:
        have = f" Your playlists: {', '.join(names)}." if names else " You have no playlists."
        return make_reply(f"There is no playlist called “{name}”.{have}", parse, action)
    state.pending = Pending("confirm", "delete_playlist", payload={"id": info[0], "name": info[1]})
    return make_reply(
        f"Delete the playlist “{info[1]}” ({info[2]} track{'s' if info[2] != 1 else ''})? "
        "Say yes or no.",
        parse,
        action,
        question="confirm",
    )


def playlist_export(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    """ "export road trip": write the playlist as M3U8 (XSPF when asked) in the library's
    playlists folder ($MUSICBERT_HOME/playlists), with absolute paths."""
    from catalog.playlists import export_playlist
    from musicbert.paths import home_dir

    action = "action_playlist_export"
    name = parse.first("playlist") or state.playlist
    if not name:
        return make_reply(
            "Which playlist should I export? Say e.g. “export road trip”.", parse, action
        )
    fmt = "xspf" if re.search(r"\bxspf\b", parse.text, re.I) else "m3u8"
    path, n = export_playlist(ctx.catalog, name, home_dir() / "playlists", fmt, relative=False)
    state.playlist = name
    return make_reply(
        f"Wrote “{name}” ({n} track{'s' if n != 1 else ''}) to {path}.",
        parse,
        action,
        file=str(path),
        format=fmt,
    )
