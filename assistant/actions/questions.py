"""Questions about the library, answered by QA (or from the catalog row without it)."""

from __future__ import annotations

from assistant.actions.context import ActionContext
from assistant.actions.names import resolve_tracks
from assistant.actions.replies import ask_which, make_reply, track_refs
from assistant.state import DialogueState
from assistant.turn import Parse, Reply


def answer_question(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    """ask_* / describe_track / compare_tracks: the QA engine, with the conversation's context."""
    action = f"action_{parse.intent}"
    if parse.intent == "describe_track" or parse.intent == "ask_track_info":
        track = parse.first("track")
        if track and not parse.first("artist"):
            ids, _ = resolve_tracks(ctx, track)
            if len(ids) > 1 and parse.intent == "describe_track":
                return ask_which(ctx, parse, state, ids, "describe", action)
    if ctx.qa is not None:
        from assistant.qa import QAContext

        qctx = QAContext(state.current_track_id, list(state.last_results), state.last_attribute)
        reply = ctx.qa.answer(parse.intent, parse, qctx)
        state.current_track_id = qctx.current_track_id
        state.last_attribute = qctx.last_attribute
        if reply.tracks and parse.intent != "ask_stats":
            state.current_track_id = reply.tracks[0].id
        if len(reply.tracks) > 1:
            state.last_results = [t.id for t in reply.tracks]
        reply.action = reply.action or action
        return reply
    return catalog_facts(ctx, parse, state, action)


def catalog_facts(ctx: ActionContext, parse: Parse, state: DialogueState, action: str) -> Reply:
    """Minimal answers straight from the catalog row (used when no QA engine is loaded)."""
    track = parse.first("track")
    ids = resolve_tracks(ctx, track)[0] if track else []
    target = ids[0] if ids else state.current_track_id
    if target is None:
        return make_reply("Which track do you mean? Name it or play it first.", parse, action)
    from catalog.queries import duration_text, track_rows

    rows = track_rows(ctx.catalog, [target])
    if not rows:
        return make_reply("That track is no longer in the library.", parse, action)
    t = rows[0]
    facts = [f"“{t.title}”"]
    if t.artist:
        facts.append(f"by {t.artist.name}")
    if t.album:
        facts.append(f"on {t.album.title}")
    if t.year:
        facts.append(f"({t.year})")
    text = " ".join(facts) + f", {duration_text(t.duration)} long."
    f = t.features
    if f is not None and f.tempo:
        text += f" Tempo about {f.tempo:.0f} bpm."
    if f is not None and f.key:
        text += f" Key {f.key} {f.mode or ''}.".replace(" .", ".")
    state.current_track_id = t.id
    return make_reply(text, parse, action, track_refs(ctx, [t.id]))


def describe_by_id(ctx, parse, state, track_id: int) -> Reply:
    from assistant.qa import QAContext

    qctx = QAContext(track_id, [track_id], None)
    reply = ctx.qa.answer("describe_track", Parse("describe it", "describe_track", 1.0), qctx)
    state.last_attribute = qctx.last_attribute
    return reply
