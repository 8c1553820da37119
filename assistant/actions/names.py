"""The track, artist or album a turn names, resolved against the catalog (with suggestions)."""

from __future__ import annotations

from assistant.actions.context import ActionContext
from assistant.actions.replies import make_reply, not_found_text
from assistant.turn import Parse, Reply


def resolve_tracks(ctx: ActionContext, name: str) -> tuple[list[int], list[str]]:
    """Track ids for a title (all tracks of the best-matching title), or suggestions."""
    from catalog.queries import find_tracks

    found = find_tracks(ctx.catalog, name, "title")
    if not found:
        return [], found.suggestions
    best = found.matches[0]
    return list(best.track_ids), []


def resolve_named(
    ctx: ActionContext, field_name: str, name: str
) -> tuple[list[int], str | None, list[str]]:
    """Tracks of an artist / album: (ids, matched name, suggestions)."""
    from catalog.queries import find_tracks

    found = find_tracks(ctx.catalog, name, field_name)
    if not found:
        return [], None, found.suggestions
    best = found.matches[0]
    return list(best.track_ids), best.name, []


def track_named(ctx: ActionContext, name: str) -> tuple[list[int], str | None]:
    """Ids of the track called ``name``, or the sentence saying it is not there."""
    ids, suggestions = resolve_tracks(ctx, name)
    return ids, None if ids else not_found_text("a track called", name, suggestions)


def parsed_track(ctx: ActionContext, parse: Parse, action: str) -> tuple[list[int], Reply | None]:
    """Ids of the track the turn names ([] when it names none), or the reply saying that
    the library has no such track."""
    track = parse.first("track")
    if not track:
        return [], None
    ids, missing = track_named(ctx, track)
    return ids, make_reply(missing, parse, action) if missing else None
