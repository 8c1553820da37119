"""Song paths ("from X to Y in 8 songs") and the listening history."""

from __future__ import annotations

import re

from assistant.actions.context import DEFAULT_RESULTS, ActionContext
from assistant.actions.finding import as_search_filters, build_filters, queue_tracks
from assistant.actions.names import track_named
from assistant.actions.replies import (
    label,
    make_reply,
    number_said,
    numbered,
    result_count,
    track_refs,
)
from assistant.state import DialogueState
from assistant.turn import Parse, Reply


def song_path(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    """ "take me from Nebula to Battle Music in 8 songs": a path through the shared space
    (``catalog.song_path``), offered as the last results ("play these" plays it)."""
    from catalog.song_path import song_path as find_path

    action = "action_song_path"
    names = parse.values("track")
    if len(names) < 2:
        return make_reply(
            "From which track to which? Say “from Nebula to Battle Music”.", parse, action
        )
    if ctx.search is None:
        return make_reply(
            "A song path needs MusicBERT vectors: run `musicbert reindex`.", parse, action
        )
    ends = []
    for name in names[:2]:
        ids, missing = track_named(ctx, name)
        if missing:
            return make_reply(missing, parse, action)
        ends.append(ids[0])
    n = number_said(parse) or 8
    filters, problems = build_filters(ctx, parse)
    if problems:
        return make_reply(" ".join(problems), parse, action)
    path = find_path(
        ctx.search, ends[0], ends[1], n, as_search_filters(filters, list(state.rejected))
    )
    why = {s.track_id: f"{s.progress:.0%} of the way" for s in path.steps}
    refs = track_refs(ctx, path.track_ids, why=why)
    state.last_results = [r.id for r in refs]
    state.current_track_id = refs[0].id
    text = (
        f"From {label(refs[0])} to {label(refs[-1])} in {len(refs)} songs; "
        f"{path.explanation()}:\n{numbered(refs)}"
    )
    return make_reply(text, parse, action, refs, path=path.to_dict())


def play_history(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    """ "my most played this month", "something I haven't played in a while", "play what
    I liked yesterday": the play history (``catalog.history``); played when asked to play."""
    from assistant.nlu.history_requests import request_kind
    from catalog import history

    action = "action_play_history"
    kind = request_kind(parse.text) or "most_played"
    k = result_count(parse, 10 if kind == "most_played" else DEFAULT_RESULTS)
    span = history.window(parse.text)
    since, until = span if span else (None, None)
    when = history_when(parse.text) if span else ""
    if kind == "most_played":
        rows = history.most_played(ctx.catalog, since, until, k)
        head, empty = f"Your most played{when}", f"Nothing was played{when or ' yet'}."
    elif kind == "played_in":
        rows = history.played_in(ctx.catalog, since, until, k)
        head, empty = f"What you played{when}", f"Nothing was played{when or ' yet'}."
    else:
        rows = history.not_played_lately(ctx.catalog, 30, k, include_never=True)
        head = "Not played in the last 30 days"
        empty = "Everything in the library was played in the last 30 days."
    if not rows:
        return make_reply(empty, parse, action)
    plays = {r.track_id: f"played {r.plays}×" if r.plays else "never played" for r in rows}
    refs = track_refs(ctx, [r.track_id for r in rows], why=plays)
    state.last_results = [r.id for r in refs]
    if re.match(r"\s*(?:please\s+)?(?:play|put on|queue|start)\b", parse.text, re.I):
        return queue_tracks(ctx, parse, state, [r.id for r in refs], action, intro=f"{head}:")
    state.current_track_id = refs[0].id
    return make_reply(f"{head}:\n{numbered(refs)}", parse, action, refs, history=kind)


def history_when(text: str) -> str:
    m = re.search(
        r"\b(today|tonight|yesterday|(?:this|last) (?:week|month|year)"
        r"|(?:last|past) \w+ (?:days?|weeks?|months?))\b",
        text,
        re.I,
    )
    return f" {m.group(1).lower()}" if m else ""
