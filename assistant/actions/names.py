"""The track, artist or album a turn names, resolved against the catalog (with suggestions)."""

from __future__ import annotations

from assistant.actions.context import ActionContext


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
