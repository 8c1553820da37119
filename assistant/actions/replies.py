"""Building replies: track references, numbered lists, "did you mean", "which one?"."""

from __future__ import annotations

import re
from typing import Any

from assistant.actions.context import DEFAULT_RESULTS, MAX_RESULTS, ActionContext
from assistant.state import DialogueState, Pending
from assistant.turn import Parse, Reply, TrackRef

PLURAL = re.compile(r"\b(these|them|those|results|all of|the list|this list)\b", re.I)


def track_refs(
    ctx: ActionContext,
    ids: list[int],
    scores: dict[int, float] | None = None,
    why: dict[int, str] | None = None,
) -> list[TrackRef]:
    from catalog.queries import track_rows

    rows = {t.id: t for t in track_rows(ctx.catalog, ids)}
    refs = []
    for i in ids:
        t = rows.get(i)
        if t is None:
            continue
        refs.append(
            TrackRef(
                t.id,
                t.title,
                t.artist.name if t.artist else None,
                t.album.title if t.album else None,
                float(t.duration) if t.duration else None,
                (scores or {}).get(i),
                (why or {}).get(i),
            )
        )
    return refs


def hit_refs(ctx: ActionContext, hits) -> list[TrackRef]:
    """Search hits as tracks to show, keeping each hit's score and explanation."""
    return track_refs(
        ctx,
        [h.track_id for h in hits],
        {h.track_id: round(float(h.score), 3) for h in hits},
        {h.track_id: "; ".join(h.why) for h in hits if h.why},
    )


def label(ref: TrackRef) -> str:
    text = f"“{ref.title}”"
    if ref.artist:
        text += f" by {ref.artist}"
    return text


def numbered(refs: list[TrackRef]) -> str:
    return "\n".join(f"{n}. {label(r)}" for n, r in enumerate(refs, 1))


def make_reply(
    text: str, parse: Parse, action: str, refs: list[TrackRef] | None = None, **data: Any
) -> Reply:
    return Reply(text, parse, refs or [], action, data)


def result_count(parse: Parse, default: int = DEFAULT_RESULTS) -> int:
    for value in parse.values("number"):
        try:
            n = int(float(value))
        except ValueError:
            continue
        if 1 <= n <= MAX_RESULTS:
            return n
    return default


def number_said(parse: Parse) -> int | None:
    for value in parse.values("number"):
        try:
            return int(float(value))
        except ValueError:
            continue
    return None


def not_found_text(kind: str, name: str, suggestions: list[str]) -> str:
    """ "I can't find <kind> “name” in your library" (``kind`` may be ""), with suggestions."""
    text = f"I can't find {kind + ' ' if kind else ''}“{name}” in your library."
    if suggestions:
        text = text[:-1] + "; did you mean " + " or ".join(f"“{s}”" for s in suggestions) + "?"
    return text


def ask_which(
    ctx: ActionContext, parse: Parse, state: DialogueState, ids: list[int], then: str, action: str
) -> Reply:
    refs = track_refs(ctx, ids)
    state.pending = Pending("choose", then, [r.id for r in refs])
    state.last_results = [r.id for r in refs]
    details = []
    for n, r in enumerate(refs, 1):
        extra = [x for x in (r.artist, r.album) if x]
        details.append(f"{n}. “{r.title}”" + (f" ({', '.join(extra)})" if extra else ""))
    text = (
        f"There are {len(refs)} tracks called “{refs[0].title}”:\n"
        + "\n".join(details)
        + "\nWhich one do you mean? (say “the first one”, “the second one”, ...)"
    )
    return make_reply(text, parse, action, refs, question="choose")
