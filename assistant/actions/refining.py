"""Changing the last request: "more upbeat", "calmer", "only piano", "faster"."""

from __future__ import annotations

import statistics
from typing import Any

from sqlalchemy import func, select

from assistant.actions.context import ActionContext
from assistant.actions.finding import (
    as_search_filters,
    build_filters,
    build_query,
    find_music,
    search_music,
)
from assistant.actions.replies import hit_refs, make_reply, numbered, result_count
from assistant.state import DialogueState
from assistant.turn import Parse, Reply
from catalog.models import AudioFeatures
from musicbert.errors import MusicBertError

_DIRECTION_WORDS = {
    "faster": ("fast energetic", "slow calm"),
    "slower": ("slow calm", "fast energetic"),
    "louder": ("loud powerful", "quiet soft"),
    "quieter": ("quiet soft", "loud powerful"),
}


#: Refinements that ask for a faster (+1) or slower (-1) tempo: direction words, and
#: mood words asked for more of ("more upbeat", "calmer") or less of ("less energetic").
_TEMPO_DIRECTIONS = {"faster": 1, "slower": -1}


TEMPO_MOODS = {
    **dict.fromkeys(
        ("upbeat", "energetic", "fast", "lively", "uplifting", "aggressive", "intense"), 1
    ),
    **dict.fromkeys(
        ("calm", "slow", "relaxing", "chill", "peaceful", "mellow", "dreamy", "sleepy"), -1
    ),
}


#: A tempo refinement keeps tracks at least this far beyond the median of what was
#: offered: 5% of it, and never less than TEMPO_MIN_STEP bpm (tempo estimates are rough).
TEMPO_STEP = 0.05


TEMPO_MIN_STEP = 3.0


def refine(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    """Change the last search ("more upbeat", "less dark", "only piano", "faster").

    The query moves toward / away from the words (``SearchEngine.refine``). A change
    of pace ("faster", "more upbeat", "calmer") also bounds the tempo beyond the
    median of the tracks offered last, so the new ones are measurably faster or
    slower; the reply gives both medians.
    """
    action = "action_refine"
    directions = parse.values("direction")
    words = build_query(parse)
    new_filters, problems = build_filters(ctx, parse)
    if problems:
        return make_reply(" ".join(problems), parse, action)
    filters = {**state.filters, **new_filters}
    base = state.last_query
    if not base and state.current_track_id is None:
        if words or new_filters:  # "something calmer" before any search: search for it
            return search_music(ctx, parse, state)
        return make_reply(
            "Refine what? Ask for some music first (e.g. “recommend something calm”).",
            parse,
            action,
        )
    toward, away = [], []
    for d in directions:
        if d in _DIRECTION_WORDS:
            toward.append(_DIRECTION_WORDS[d][0])
            away.append(_DIRECTION_WORDS[d][1])
    if "less" in directions and words:
        away.append(words)
    elif words:
        toward.append(words)
    if not toward and not away and not new_filters:
        return make_reply(
            "How should I change it? Say e.g. “faster”, “more upbeat”, “only piano”.", parse, action
        )
    pace = None
    way = tempo_way(parse)
    if way and "tempo_min" not in new_filters:  # an explicit "around 120 bpm" wins
        offered = state.last_results or [state.current_track_id]
        pace = pace_bound(ctx, offered, way, state.rejected)
        if pace is not None:
            if pace["bound"] is None:
                return make_reply(pace["text"], parse, action, **{"tempo": pace})
            filters.pop("tempo_min", None)
            filters.pop("tempo_max", None)
            filters["tempo_min" if way > 0 else "tempo_max"] = pace["bound"]
    if ctx.search is None:
        if pace is not None:
            # Tags are hard conditions here: the pace words ("calm", "upbeat") become the
            # tempo bound instead of tags, the others stay ("only piano, faster").
            terms = (base or "").split() + ([] if "less" in directions else words.split())
            query = " ".join(dict.fromkeys(t for t in terms if t.casefold() not in TEMPO_MOODS))
        else:
            query = " ".join([*(base or "").split(), *" ".join(toward).split()]).strip()
        found = find_music(ctx, parse, state, action, query=query, filters=filters)
        return with_pace(ctx, found, pace)
    k = result_count(parse)
    try:
        query = base if base else ctx.search.track_vectors([state.current_track_id])[0]
        hits = ctx.search.refine(
            query,
            " ".join(toward) or (base or "music"),
            " ".join(away) or None,
            k=k,
            filters=as_search_filters(filters, state.rejected),
        )
    except MusicBertError as exc:
        return make_reply(f"I can't refine that: {exc}", parse, action)
    if not hits:
        return make_reply("Nothing in your library fits that change.", parse, action)
    refs = hit_refs(ctx, hits)
    state.filters = filters
    state.last_query = " ".join(x for x in (base, " ".join(toward)) if x).strip() or base
    state.last_results = [r.id for r in refs]
    state.current_track_id = refs[0].id
    change = ", ".join(x for x in ([*toward] + [f"less {a}" for a in away]) if x)
    reply = make_reply(f"Adjusted ({change}):\n{numbered(refs)}", parse, action, refs)
    return with_pace(ctx, reply, pace)


def tempo_way(parse: Parse) -> int:
    """+1 when a refinement asks for a faster pace, -1 for a slower one, 0 otherwise."""
    directions = parse.values("direction")
    sign = -1 if "less" in directions else 1
    way = sum(_TEMPO_DIRECTIONS.get(d, 0) for d in directions)
    way += sum(sign * TEMPO_MOODS.get(m.casefold(), 0) for m in parse.values("mood"))
    return (way > 0) - (way < 0)


def tempi_of(ctx: ActionContext, ids: list[int]) -> list[float]:
    """The known tempi (bpm) of these tracks."""
    from catalog.queries import track_rows

    return [
        float(t.features.tempo)
        for t in track_rows(ctx.catalog, [i for i in ids if i is not None])
        if t.features is not None and t.features.tempo
    ]


def pace_bound(
    ctx: ActionContext, offered: list[int], way: int, rejected: list[int]
) -> dict[str, Any] | None:
    """The tempo bound for "faster" (way 1) / "slower" (way -1) than the tracks offered.

    None when the offered tracks have no measured tempo (the text alone refines);
    bound None, with a text saying so, when no track in the library is beyond it.
    """
    tempi = tempi_of(ctx, offered)
    if not tempi:
        return None
    before = statistics.median(tempi)
    step = max(TEMPO_MIN_STEP, TEMPO_STEP * before)
    bound = round(before + way * step, 1)
    column = AudioFeatures.tempo
    q = select(func.count()).select_from(AudioFeatures)
    q = q.where(column >= bound if way > 0 else column <= bound)
    if rejected:
        q = q.where(AudioFeatures.track_id.not_in(rejected))
    with ctx.catalog.session() as s:
        n = s.scalar(q)
    word = "faster" if way > 0 else "slower"
    pace = {"way": word, "before": round(before, 1), "bound": bound}
    if not n:
        pace["bound"] = None
        pace["text"] = (
            f"Nothing in your library is {word}: the tracks I offered have a median tempo "
            f"of {before:.0f} bpm, and no track is {'above' if way > 0 else 'below'} "
            f"{bound:g} bpm."
        )
    return pace


def with_pace(ctx: ActionContext, reply: Reply, pace: dict[str, Any] | None) -> Reply:
    """Say how the tempo moved ("faster: median 132 bpm, was 96") and record it in the data."""
    if pace is None or not reply.tracks:
        return reply
    tempi = tempi_of(ctx, [r.id for r in reply.tracks])
    if not tempi:
        return reply
    pace = {**pace, "after": round(statistics.median(tempi), 1)}
    note = f"{pace['way']}: median {pace['after']:.0f} bpm, was {pace['before']:.0f}"
    head, sep, rest = reply.text.partition(":\n")
    if head.endswith(")"):
        head = f"{head[:-1]}; {note})"
    else:
        head = f"{head} ({note})"
    reply.text = head + sep + rest
    reply.data["tempo"] = pace
    return reply
