"""One function per dialogue action; the in-process policy and the Rasa bridge share them.

Each action reads the parse and the dialogue state, does one thing with the
catalog, the search engine, the QA engine or the player, updates the state and
returns a ``Reply``. Every title, name and number in a reply is read from the
catalog; when something is missing the reply says so instead of guessing.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select

from assistant.qa.questions import QA_INTENTS
from assistant.state import DialogueState, Pending
from assistant.turn import Parse, Reply, TrackRef
from catalog.filters import SearchFilters, filtered_ids
from catalog.models import AudioFeatures, PlayHistory, Playlist
from musicbert.errors import MusicBertError

DEFAULT_RESULTS = 5
MAX_RESULTS = 20
_PLURAL = re.compile(r"\b(these|them|those|results|all of|the list|this list)\b", re.I)
_DIRECTION_WORDS = {
    "faster": ("fast energetic", "slow calm"),
    "slower": ("slow calm", "fast energetic"),
    "louder": ("loud powerful", "quiet soft"),
    "quieter": ("quiet soft", "loud powerful"),
}
#: Refinements that ask for a faster (+1) or slower (-1) tempo: direction words, and
#: mood words asked for more of ("more upbeat", "calmer") or less of ("less energetic").
_TEMPO_DIRECTIONS = {"faster": 1, "slower": -1}
_TEMPO_MOODS = {
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


@dataclass
class ActionContext:
    """What actions work with; built once per assistant."""

    catalog: Any
    search: Any = None  # catalog.search.SearchEngine, when the library has vectors
    qa: Any = None  # assistant.qa.QAEngine
    player: Any = None  # assistant.player.Player
    domain: Any = None  # assistant.nlu.rasa_format.Domain (response texts)
    embedder: Any = None
    source: str = "chat"  # recorded in PlayHistory
    notes: list[str] = field(default_factory=list)
    #: Why a part (search, QA) could not be built, in words for the person.
    problems: list[str] = field(default_factory=list)

    def response(self, name: str, fallback: str) -> str:
        """The domain's text for ``name``; a domain without it is a broken domain file."""
        return self.domain.response(name) if self.domain is not None else fallback

    def no_search(self, what: str) -> str:
        """Why ``what`` cannot be done without search: the real cause when there is one."""
        cause = next((p for p in self.problems if p.startswith("search")), None)
        if cause:
            return f"I can't {what}: {cause}"
        return (
            f"I can't {what}: the library has no MusicBERT vectors yet "
            "(run `musicbert ingest` with the model, or `musicbert reindex`)."
        )


Action = Callable[[ActionContext, Parse, DialogueState], Reply]


# --------------------------------------------------------------------------- helpers


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


def _reply(
    text: str, parse: Parse, action: str, refs: list[TrackRef] | None = None, **data: Any
) -> Reply:
    return Reply(text, parse, refs or [], action, data)


def _count(parse: Parse, default: int = DEFAULT_RESULTS) -> int:
    for value in parse.values("number"):
        try:
            n = int(float(value))
        except ValueError:
            continue
        if 1 <= n <= MAX_RESULTS:
            return n
    return default


def _number(parse: Parse) -> int | None:
    for value in parse.values("number"):
        try:
            return int(float(value))
        except ValueError:
            continue
    return None


def resolve_tracks(ctx: ActionContext, name: str) -> tuple[list[int], list[str]]:
    """Track ids for a title (all tracks of the best-matching title), or suggestions."""
    from catalog.queries import find_tracks

    found = find_tracks(ctx.catalog, name, "title")
    if not found:
        return [], found.suggestions
    best = found.matches[0]
    return list(best.track_ids), []


def _named(
    ctx: ActionContext, field_name: str, name: str
) -> tuple[list[int], str | None, list[str]]:
    """Tracks of an artist / album: (ids, matched name, suggestions)."""
    from catalog.queries import find_tracks

    found = find_tracks(ctx.catalog, name, field_name)
    if not found:
        return [], None, found.suggestions
    best = found.matches[0]
    return list(best.track_ids), best.name, []


def _not_found(kind: str, name: str, suggestions: list[str]) -> str:
    text = f"I can't find {kind} “{name}” in your library."
    if suggestions:
        text = text[:-1] + "; did you mean " + " or ".join(f"“{s}”" for s in suggestions) + "?"
    return text


def _ask_which(
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
    return _reply(text, parse, action, refs, question="choose")


def _decade_years(value: str) -> tuple[int, int] | None:
    m = re.fullmatch(r"(\d{4})s", value or "")
    if not m:
        return None
    start = int(m.group(1))
    return start, start + 9


def build_query(parse: Parse) -> str:
    """Search text: the descriptive entities ("calm piano", "epic orchestral"), then the
    utterance's other content words ("battle", "running"), never names or commands.

    Names (artist, album, track, playlist) become filters or lookups, not text; command
    and filler words ("play", "some", "music") carry nothing the shared space can use.
    """
    from assistant.nlu.entities import tokens
    from musicbert.vocabulary import COMMAND_WORDS, FILLER_WORDS

    words = parse.values("mood") + parse.values("genre") + parse.values("instrument")
    if words and parse.text:
        covered = [(e.start, e.end) for e in parse.entities]
        for word, start, end in tokens(parse.text):
            inside = any(s <= start and end <= e for s, e in covered)
            if not inside and word not in FILLER_WORDS and word not in COMMAND_WORDS:
                words.append(word)
    return " ".join(dict.fromkeys(words))


def build_filters(ctx: ActionContext, parse: Parse) -> tuple[dict[str, Any], list[str]]:
    """SearchFilters fields from the names, decades and tempi in a parse; plus problems."""
    filters: dict[str, Any] = {}
    problems: list[str] = []
    artist = parse.first("artist")
    if artist:
        ids, matched, sugg = _named(ctx, "artist", artist)
        if matched:
            filters["artist"] = matched
        else:
            problems.append(
                _not_found("an artist called", artist, sugg).replace("an artist called “", "“")
            )
    album = parse.first("album")
    if album:
        ids, matched, sugg = _named(ctx, "album", album)
        if matched:
            filters["album"] = matched
        else:
            problems.append(_not_found("the album", album, sugg))
    decade = parse.first("decade")
    years = _decade_years(decade) if decade else None
    if years:
        filters["year_min"], filters["year_max"] = years
    if "tempo" in parse.values("attribute"):
        n = _number(parse)
        if n and 30 <= n <= 300:
            filters["tempo_min"], filters["tempo_max"] = n - 8, n + 8
    return filters, problems


def _search_filters(filters: dict[str, Any], exclude: list[int] | None = None) -> SearchFilters:
    return SearchFilters.from_dict(filters, exclude or ())


def _sql_ids(
    ctx: ActionContext, filters: dict[str, Any], words: list[str], k: int, exclude: list[int]
) -> list[int]:
    """Tracks matching filters and tag words in SQL (used when there are no vectors)."""
    wanted = SearchFilters.from_dict(filters, exclude)
    wanted.tag = wanted.tag_list() + words
    with ctx.catalog.session() as s:
        return filtered_ids(s, wanted)[:k]


def find_music(
    ctx: ActionContext,
    parse: Parse,
    state: DialogueState,
    action: str,
    k: int | None = None,
    query: str | None = None,
    filters: dict[str, Any] | None = None,
) -> Reply:
    """Search by description and filters; the shared core of recommend / search / play."""
    k = k or _count(parse)
    if filters is None:
        filters, problems = build_filters(ctx, parse)
        if problems:
            artist = parse.first("artist")
            if artist and "artist" not in filters:
                sugg = _named(ctx, "artist", artist)[2]
                return nothing_by(ctx, parse, state, action, artist, sugg)
            return _reply(" ".join(problems), parse, action)
    query = query if query is not None else build_query(parse)
    exclude = list(state.rejected)
    hits = None
    note = ""
    if ctx.search is not None and query:
        try:
            hits = ctx.search.search(
                query, k=k, filters=_search_filters(filters, exclude), diversity=0.3
            )
        except MusicBertError as exc:
            note = f" ({exc})"
    if hits is not None:
        ids = [h.track_id for h in hits]
        scores = {h.track_id: round(float(h.score), 3) for h in hits}
        why = {h.track_id: "; ".join(h.why) for h in hits if h.why}
    else:
        words = query.split() if query else []
        ids = _sql_ids(ctx, filters, words, k, exclude)
        scores, why = {}, {}
    state.last_query = query or None
    state.filters = filters
    if not ids:
        described = " ".join(x for x in (query, _describe_filters(filters)) if x) or "that"
        return _reply(f"I found nothing in your library for {described}.{note}", parse, action)
    refs = track_refs(ctx, ids, scores, why)
    state.last_results = [r.id for r in refs]
    state.current_track_id = refs[0].id
    described = " ".join(x for x in (query, _describe_filters(filters)) if x)
    head = (
        f"Here {'is' if len(refs) == 1 else 'are'} {len(refs)} track{'s' if len(refs) != 1 else ''}"
    )
    if described:
        head += f" for {described}" if query else f" {described}"  # "3 tracks by Maxstack"
    judge = getattr(ctx.search, "no_good_match", None)
    weak = bool(hits) and judge is not None and judge(query, hits)
    if weak:  # the query names nothing musical: offer the closest tracks as only that
        head = f"I found no good match for {described}; the closest tracks are"
    if hits is None and query:
        cause = next((p for p in ctx.problems if p.startswith("search")), None)
        cause = cause or "this library has no MusicBERT vectors to search by sound"
        head += f" (matched on tags: {cause})"
    text = f"{head}:\n{numbered(refs)}"
    if getattr(ctx.embedder, "untrained", False) and hits is not None:
        text += "\n(Note: the MusicBERT model is untrained, so this ranking is not meaningful.)"
    return _reply(text, parse, action, refs, query=query, filters=filters, good_match=not weak)


def _describe_filters(filters: dict[str, Any]) -> str:
    return SearchFilters.from_dict(filters).describe() if filters else ""


def queue_tracks(
    ctx: ActionContext,
    parse: Parse,
    state: DialogueState,
    ids: list[int],
    action: str,
    intro: str | None = None,
) -> Reply:
    """Play (or, without a player, queue and record) tracks; the first becomes current."""
    from catalog.queries import track_rows

    rows = track_rows(ctx.catalog, ids)
    if not rows:
        return _reply("There is nothing to play.", parse, action)
    refs = track_refs(ctx, [t.id for t in rows])
    state.current_track_id = rows[0].id
    if len(rows) > 1 or not state.last_results or rows[0].id not in state.last_results:
        state.last_results = [t.id for t in rows]
    with ctx.catalog.session() as s:
        s.add(PlayHistory(track_id=rows[0].id, source=ctx.source))
    what = label(refs[0]) + (f" and {len(refs) - 1} more" if len(refs) > 1 else "")
    if ctx.player is not None:
        from assistant.player import PlayItem

        try:
            ctx.player.enqueue([PlayItem(t.id, t.path, t.title) for t in rows], replace=True)
            ctx.player.play()
            text = f"Playing {what}."
        except MusicBertError as exc:
            text = f"I can't play {what}: {exc}"
    else:
        text = f"Queued {what} (no audio output in this session, so nothing is sounding)."
    if intro:
        text = f"{intro} {text}"
    return _reply(text, parse, action, refs)


# --------------------------------------------------------------------------- chit-chat


def _respond(name: str, fallback: str) -> Action:
    def action(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
        return _reply(ctx.response(name, fallback), parse, name)

    action.__name__ = name
    return action


greet = _respond("utter_greet", "Hi! What would you like to hear?")
goodbye = _respond("utter_goodbye", "Goodbye.")
thank = _respond("utter_thank", "You're welcome.")
help_ = _respond("utter_help", "Try: play Battle Music, recommend something calm, pause.")
out_of_scope = _respond("utter_out_of_scope", "Sorry, I can only help with your music.")


# --------------------------------------------------------------------------- music


def play_music(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    action = "action_play_music"
    track = parse.first("track")
    if track:
        ids, sugg = resolve_tracks(ctx, track)
        if not ids:
            return _reply(_not_found("a track called", track, sugg), parse, action)
        artist = parse.first("artist")
        if len(ids) > 1 and artist:
            refs = [
                r for r in track_refs(ctx, ids) if r.artist and artist.lower() in r.artist.lower()
            ]
            ids = [r.id for r in refs] or ids
        if len(ids) > 1:
            return _ask_which(ctx, parse, state, ids, "play", action)
        return queue_tracks(ctx, parse, state, ids, action)
    playlist = parse.first("playlist")
    if playlist:
        with ctx.catalog.session() as s:
            pl = _playlist(s, playlist)
            ids = [i.track_id for i in pl.items] if pl else []
        if pl is None:
            return _reply(f"There is no playlist called “{playlist}”.", parse, action)
        if not ids:
            return _reply(f"The playlist “{pl.name}” is empty.", parse, action)
        state.playlist = pl.name
        return queue_tracks(ctx, parse, state, ids, action)
    album = parse.first("album")
    if album and not build_query(parse):
        ids, matched, sugg = _named(ctx, "album", album)
        if not ids:
            return _reply(_not_found("the album", album, sugg), parse, action)
        return queue_tracks(ctx, parse, state, ids, action)
    artist = parse.first("artist")
    if artist and not build_query(parse) and not parse.first("decade"):
        ids, matched, sugg = _named(ctx, "artist", artist)
        if not ids:
            return nothing_by(ctx, parse, state, action, artist, sugg)
        return queue_tracks(ctx, parse, state, ids, action)
    if build_query(parse) or parse.first("decade") or artist:
        found = find_music(ctx, parse, state, action)
        if not found.tracks:
            return found
        return queue_tracks(ctx, parse, state, [r.id for r in found.tracks], action)
    if _PLURAL.search(parse.text) and state.last_results:  # "play these" (a path, a list)
        return queue_tracks(ctx, parse, state, list(state.last_results), action)
    target = state.current_track_id or (state.last_results[0] if state.last_results else None)
    if target is None:
        return _reply(
            "What should I play? Name a track, an artist or a mood (e.g. “play Nebula”).",
            parse,
            action,
        )
    return queue_tracks(ctx, parse, state, [target], action)


def recommend(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    query = build_query(parse)
    if not query and not parse.first("artist") and not parse.first("decade"):
        # "surprise me": close to what is playing, else a broad description
        if state.current_track_id and ctx.search is not None:
            return more_like_this(ctx, parse, state)
        from_history = recommend_from_history(ctx, parse, state)
        if from_history is not None:
            return from_history
        query = "music"
    return _without_skipped(
        ctx, state, lambda: find_music(ctx, parse, state, "action_recommend", query=query)
    )


def search_music(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    action = "action_search_music"
    track = parse.first("track")
    if track:
        ids, sugg = resolve_tracks(ctx, track)
        if not ids:
            return _reply(_not_found("a track called", track, sugg), parse, action)
        refs = track_refs(ctx, ids)
        state.last_results = ids
        state.current_track_id = ids[0]
        return _reply(f"Found {len(refs)}:\n{numbered(refs)}", parse, action, refs)
    if not build_query(parse) and not parse.first("decade"):
        for kind, fld in (("artist", "artist"), ("album", "album")):
            name = parse.first(kind)
            if name:
                ids, matched, sugg = _named(ctx, fld, name)
                if not ids and kind == "artist":
                    return nothing_by(ctx, parse, state, action, name, sugg)
                if not ids:
                    return _reply(_not_found("the album", name, sugg), parse, action)
                refs = track_refs(ctx, ids[:MAX_RESULTS])
                state.last_results = [r.id for r in refs]
                state.current_track_id = refs[0].id
                more = f" (showing {len(refs)})" if len(ids) > len(refs) else ""
                return _reply(
                    f"{len(ids)} track{'s' if len(ids) != 1 else ''} "
                    f"{'by' if kind == 'artist' else 'on'} {matched}{more}:\n{numbered(refs)}",
                    parse,
                    action,
                    refs,
                )
    if not build_query(parse) and not any(parse.values(k) for k in ("decade", "number")):
        return _reply(
            "What should I look for? A track, an artist, a mood or an instrument.", parse, action
        )
    return find_music(ctx, parse, state, action, k=_count(parse, 10))


def more_like_this(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    action = "action_more_like_this"
    seed = None
    track = parse.first("track")
    if track:
        ids, sugg = resolve_tracks(ctx, track)
        if not ids:
            return _reply(_not_found("a track called", track, sugg), parse, action)
        seed = ids[0]
    elif parse.first("artist"):
        ids, matched, sugg = _named(ctx, "artist", parse.first("artist"))
        if not ids:
            return _reply(
                f"There is nothing by {parse.first('artist')} in your library.", parse, action
            )
        seed = ids[0]
    else:
        seed = state.current_track_id or (state.last_results[0] if state.last_results else None)
    if seed is None:
        return _reply("More like what? Play or name a track first.", parse, action)
    k = _count(parse)
    exclude = set(state.rejected) | {seed}
    if ctx.search is None:
        return _reply(ctx.no_search("find similar tracks"), parse, action)
    try:
        hits = ctx.search.similar(seed, k=k, filters=_search_filters(state.filters, list(exclude)))
    except MusicBertError as exc:
        return _reply(f"I can't find similar tracks: {exc}", parse, action)
    if not hits:
        return _reply("I found nothing else like it.", parse, action)
    refs = hit_refs(ctx, hits)
    seed_ref = track_refs(ctx, [seed])
    state.last_results = [r.id for r in refs]
    state.current_track_id = refs[0].id
    text = f"Tracks like {label(seed_ref[0])}:\n{numbered(refs)}" if seed_ref else numbered(refs)
    return _reply(text, parse, action, refs, seed=seed)


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
        return _reply(" ".join(problems), parse, action)
    filters = {**state.filters, **new_filters}
    base = state.last_query
    if not base and state.current_track_id is None:
        if words or new_filters:  # "something calmer" before any search: search for it
            return search_music(ctx, parse, state)
        return _reply(
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
        return _reply(
            "How should I change it? Say e.g. “faster”, “more upbeat”, “only piano”.", parse, action
        )
    pace = None
    way = _tempo_way(parse)
    if way and "tempo_min" not in new_filters:  # an explicit "around 120 bpm" wins
        offered = state.last_results or [state.current_track_id]
        pace = _pace_bound(ctx, offered, way, state.rejected)
        if pace is not None:
            if pace["bound"] is None:
                return _reply(pace["text"], parse, action, **{"tempo": pace})
            filters.pop("tempo_min", None)
            filters.pop("tempo_max", None)
            filters["tempo_min" if way > 0 else "tempo_max"] = pace["bound"]
    if ctx.search is None:
        if pace is not None:
            # Tags are hard conditions here: the pace words ("calm", "upbeat") become the
            # tempo bound instead of tags, the others stay ("only piano, faster").
            terms = (base or "").split() + ([] if "less" in directions else words.split())
            query = " ".join(dict.fromkeys(t for t in terms if t.casefold() not in _TEMPO_MOODS))
        else:
            query = " ".join([*(base or "").split(), *" ".join(toward).split()]).strip()
        found = find_music(ctx, parse, state, action, query=query, filters=filters)
        return _with_pace(ctx, found, pace)
    k = _count(parse)
    try:
        query = base if base else ctx.search._seed_vectors([state.current_track_id])[0]
        hits = ctx.search.refine(
            query,
            " ".join(toward) or (base or "music"),
            " ".join(away) or None,
            k=k,
            filters=_search_filters(filters, state.rejected),
        )
    except MusicBertError as exc:
        return _reply(f"I can't refine that: {exc}", parse, action)
    if not hits:
        return _reply("Nothing in your library fits that change.", parse, action)
    refs = hit_refs(ctx, hits)
    state.filters = filters
    state.last_query = " ".join(x for x in (base, " ".join(toward)) if x).strip() or base
    state.last_results = [r.id for r in refs]
    state.current_track_id = refs[0].id
    change = ", ".join(x for x in ([*toward] + [f"less {a}" for a in away]) if x)
    reply = _reply(f"Adjusted ({change}):\n{numbered(refs)}", parse, action, refs)
    return _with_pace(ctx, reply, pace)


def _tempo_way(parse: Parse) -> int:
    """+1 when a refinement asks for a faster pace, -1 for a slower one, 0 otherwise."""
    directions = parse.values("direction")
    sign = -1 if "less" in directions else 1
    way = sum(_TEMPO_DIRECTIONS.get(d, 0) for d in directions)
    way += sum(sign * _TEMPO_MOODS.get(m.casefold(), 0) for m in parse.values("mood"))
    return (way > 0) - (way < 0)


def _tempi(ctx: ActionContext, ids: list[int]) -> list[float]:
    """The known tempi (bpm) of these tracks."""
    from catalog.queries import track_rows

    return [
        float(t.features.tempo)
        for t in track_rows(ctx.catalog, [i for i in ids if i is not None])
        if t.features is not None and t.features.tempo
    ]


def _pace_bound(
    ctx: ActionContext, offered: list[int], way: int, rejected: list[int]
) -> dict[str, Any] | None:
    """The tempo bound for "faster" (way 1) / "slower" (way -1) than the tracks offered.

    None when the offered tracks have no measured tempo (the text alone refines);
    bound None, with a text saying so, when no track in the library is beyond it.
    """
    tempi = _tempi(ctx, offered)
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


def _with_pace(ctx: ActionContext, reply: Reply, pace: dict[str, Any] | None) -> Reply:
    """Say how the tempo moved ("faster: median 132 bpm, was 96") and record it in the data."""
    if pace is None or not reply.tracks:
        return reply
    tempi = _tempi(ctx, [r.id for r in reply.tracks])
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


def playback_control(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    action = "action_playback_control"
    control = parse.first("control")
    if control is None:
        return _reply(
            "Say pause, resume, stop, next, previous, volume up or volume down.", parse, action
        )
    if ctx.player is None:
        return _reply(
            f"There is no audio output in this session, so I can't {control.replace('_', ' ')}.",
            parse,
            action,
        )
    method = getattr(ctx.player, control, None)
    if method is None:
        return _reply(f"I don't know how to {control}.", parse, action)
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
    return _reply(text, parse, action)


def answer_question(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    """ask_* / describe_track / compare_tracks: the QA engine, with the conversation's context."""
    action = f"action_{parse.intent}"
    if parse.intent == "describe_track" or parse.intent == "ask_track_info":
        track = parse.first("track")
        if track and not parse.first("artist"):
            ids, _ = resolve_tracks(ctx, track)
            if len(ids) > 1 and parse.intent == "describe_track":
                return _ask_which(ctx, parse, state, ids, "describe", action)
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
    return _catalog_facts(ctx, parse, state, action)


def _catalog_facts(ctx: ActionContext, parse: Parse, state: DialogueState, action: str) -> Reply:
    """Minimal answers straight from the catalog row (used when no QA engine is loaded)."""
    track = parse.first("track")
    ids = resolve_tracks(ctx, track)[0] if track else []
    target = ids[0] if ids else state.current_track_id
    if target is None:
        return _reply("Which track do you mean? Name it or play it first.", parse, action)
    from catalog.queries import duration_text, track_rows

    rows = track_rows(ctx.catalog, [target])
    if not rows:
        return _reply("That track is no longer in the library.", parse, action)
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
    return _reply(text, parse, action, track_refs(ctx, [t.id]))


# --------------------------------------------------------------------------- playlists


def _playlist(session, name: str) -> Playlist | None:
    from catalog.playlists import find_playlist

    return find_playlist(session, name)


def _targets(
    ctx: ActionContext, parse: Parse, state: DialogueState
) -> tuple[list[int], str | None]:
    """Which tracks "this" / "these" / "the second one" / a title mean; or a problem."""
    track = parse.first("track")
    if track:
        ids, sugg = resolve_tracks(ctx, track)
        if not ids:
            return [], _not_found("a track called", track, sugg)
        if len(ids) > 1:
            return ids, "ambiguous"
        return ids, None
    n = _number(parse)
    if n is not None:
        chosen = state.choose(n)
        if chosen is None:
            return [], f"There is no result number {n}."
        return [chosen], None
    if _PLURAL.search(parse.text) and state.last_results:
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
        return _reply(
            "Which playlist should I add it to? Say e.g. “add this to road trip”.", parse, action
        )
    ids, problem = _targets(ctx, parse, state)
    if problem == "ambiguous":
        state.playlist = name
        return _ask_which(ctx, parse, state, ids, "playlist_add", action)
    if problem:
        return _reply(problem, parse, action)
    return _add_to_playlist(ctx, parse, state, name, ids, action)


def _add_to_playlist(ctx, parse, state, name: str, ids: list[int], action: str) -> Reply:
    from catalog.playlists import add_tracks

    pl_name, added, total, created = add_tracks(ctx.catalog, name, ids)
    state.playlist = pl_name
    refs = track_refs(ctx, added or ids)
    if not added:
        return _reply(
            f"Already in “{pl_name}”: {', '.join(label(r) for r in refs)}.", parse, action, refs
        )
    what = label(refs[0]) if len(refs) == 1 else f"{len(refs)} tracks"
    made = f"Created the playlist “{pl_name}” and added" if created else "Added"
    where = "to it" if created else f"to “{pl_name}”"
    return _reply(f"{made} {what} {where} ({total} in total).", parse, action, refs)


def playlist_create(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    action = "action_playlist_create"
    name = parse.first("playlist")
    if not name:
        return _reply(
            "What should the playlist be called? Say “create a playlist called …”.", parse, action
        )
    with ctx.catalog.session() as s:
        if _playlist(s, name) is not None:
            state.playlist = name
            return _reply(f"There is already a playlist called “{name}”.", parse, action)
    ids = (
        list(state.last_results)
        if (_PLURAL.search(parse.text) or re.search(r"\b(this|it)\b", parse.text, re.I))
        else []
    )
    if ids and not _PLURAL.search(parse.text) and state.current_track_id:
        ids = [state.current_track_id]
    if build_query(parse) or parse.first("artist"):
        found = find_music(ctx, parse, state, action, k=10)
        ids = [r.id for r in found.tracks]
    if ids:
        return _add_to_playlist(ctx, parse, state, name, ids, action)
    with ctx.catalog.session() as s:
        s.add(Playlist(name=name.strip()))
    state.playlist = name.strip()
    return _reply(f"Created the empty playlist “{name.strip()}”.", parse, action)


def playlist_delete(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    action = "action_playlist_delete"
    name = parse.first("playlist") or state.playlist
    if not name:
        return _reply("Which playlist should I delete?", parse, action)
    with ctx.catalog.session() as s:
        pl = _playlist(s, name)
        if pl is None:
            names = list(s.scalars(select(Playlist.name).order_by(Playlist.name)))
        else:
            info = (pl.id, pl.name, len(pl.items))
    if pl is None:
        have = f" Your playlists: {', '.join(names)}." if names else " You have no playlists."
        return _reply(f"There is no playlist called “{name}”.{have}", parse, action)
    state.pending = Pending("confirm", "delete_playlist", payload={"id": info[0], "name": info[1]})
    return _reply(
        f"Delete the playlist “{info[1]}” ({info[2]} track{'s' if info[2] != 1 else ''})? "
        "Say yes or no.",
        parse,
        action,
        question="confirm",
    )


# --------------------------------------------------------------------------- answers to questions


def affirm(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    action = "action_affirm"
    pending, state.pending = state.pending, None
    if pending is None or pending.kind != "confirm":
        return _reply("OK. What would you like to hear?", parse, action)
    if pending.then == "delete_playlist":
        with ctx.catalog.session() as s:
            gone = s.execute(delete(Playlist).where(Playlist.id == pending.payload.get("id")))
        if (
            state.playlist
            and state.playlist.casefold() == str(pending.payload.get("name")).casefold()
        ):
            state.playlist = None
        if not gone.rowcount:
            return _reply(
                f"The playlist “{pending.payload.get('name')}” was already gone.", parse, action
            )
        return _reply(f"Deleted the playlist “{pending.payload.get('name')}”.", parse, action)
    return _reply("OK.", parse, action)


def deny(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    pending, state.pending = state.pending, None
    if pending is not None and pending.then == "delete_playlist":
        return _reply(
            f"OK, I kept the playlist “{pending.payload.get('name')}”.", parse, "action_deny"
        )
    if pending is not None:
        return _reply("OK, never mind.", parse, "action_deny")
    return _reply("OK.", parse, "action_deny")


def select_item(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    action = "action_select_item"
    pending = state.pending if state.pending and state.pending.kind == "choose" else None
    options = pending.options if pending else state.last_results
    if not options:
        return _reply(
            "There is no list to choose from yet. Search or ask for music first.", parse, action
        )
    chosen = None
    n = _number(parse)
    artist = parse.first("artist")
    if artist:
        for ref in track_refs(ctx, options):
            if ref.artist and artist.casefold() in ref.artist.casefold():
                chosen = ref.id
                break
    if chosen is None and n is not None:
        chosen = state.choose(n)
        if chosen is None:
            return _reply(f"Pick a number from 1 to {len(options)}.", parse, action)
    if chosen is None and parse.first("number") is None and n is None:
        # "the 2005 one" and friends: match a year
        return _reply(f"Which one? Pick a number from 1 to {len(options)}.", parse, action)
    if chosen is None:
        return _reply(f"Pick a number from 1 to {len(options)}.", parse, action)
    state.pending = None
    then = pending.then if pending else "play"
    state.current_track_id = chosen
    if then == "playlist_add" and state.playlist:
        return _add_to_playlist(ctx, parse, state, state.playlist, [chosen], action)
    if then == "describe":
        ref = track_refs(ctx, [chosen])[0]
        return (
            answer_question(ctx, Parse(f"describe {ref.title}", "describe_track", 1.0), state)
            if ctx.qa is None
            else _describe_by_id(ctx, parse, state, chosen)
        )
    return queue_tracks(ctx, parse, state, [chosen], action)


def _describe_by_id(ctx, parse, state, track_id: int) -> Reply:
    from assistant.qa import QAContext

    qctx = QAContext(track_id, [track_id], None)
    reply = ctx.qa.answer("describe_track", Parse("describe it", "describe_track", 1.0), qctx)
    state.last_attribute = qctx.last_attribute
    return reply


def reject(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    action = "action_reject"
    current = state.current_track_id
    if current is None:
        return _reply("Not what? Ask for some music first.", parse, action)
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
    return _reply(
        "OK, not that one. I have nothing else lined up; ask me for something.", parse, action
    )


#: intent -> action; the Rasa bridge serves the same table under the domain's action names.


# --------------------------------------------------------------------------- issue 17
# Listener features (misroutes, playlists out and in, song paths, history, the map): thin
# actions over assistant/ and catalog/ modules; the logic lives in those modules.


def nothing_by(
    ctx: ActionContext,
    parse: Parse,
    state: DialogueState,
    action: str,
    artist: str,
    suggestions: list[str] | None = None,
) -> Reply:
    """An artist the library lacks: say so, then offer the closest tracks it has.

    The closest are found in the shared space from the rest of the request ("calm songs
    by X" -> "calm") or else from the name itself, and are offered, not played: "play
    the first one" picks one.
    """
    text = f"There is nothing by {artist} in your library."
    if suggestions:
        text = text[:-1] + "; did you mean " + " or ".join(f"“{s}”" for s in suggestions) + "?"
    query = build_query(parse) or artist
    hits = None
    if ctx.search is not None:
        try:
            hits = ctx.search.search(
                query, k=3, filters=_search_filters({}, list(state.rejected)), diversity=0.3
            )
        except MusicBertError:
            hits = None
    if not hits:
        return _reply(text, parse, action, missing_artist=artist)
    refs = hit_refs(ctx, hits)
    state.last_results = [r.id for r in refs]
    text += f" The closest I have to “{query}”:\n{numbered(refs)}"
    return _reply(text, parse, action, refs, missing_artist=artist, query=query)


def playlist_export(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    """ "export road trip": write the playlist as M3U8 (XSPF when asked) in the library's
    playlists folder ($MUSICBERT_HOME/playlists), with absolute paths."""
    from catalog.playlists import export_playlist
    from musicbert.paths import home_dir

    action = "action_playlist_export"
    name = parse.first("playlist") or state.playlist
    if not name:
        return _reply("Which playlist should I export? Say e.g. “export road trip”.", parse, action)
    fmt = "xspf" if re.search(r"\bxspf\b", parse.text, re.I) else "m3u8"
    path, n = export_playlist(ctx.catalog, name, home_dir() / "playlists", fmt, relative=False)
    state.playlist = name
    return _reply(
        f"Wrote “{name}” ({n} track{'s' if n != 1 else ''}) to {path}.",
        parse,
        action,
        file=str(path),
        format=fmt,
    )


def song_path(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    """ "take me from Nebula to Battle Music in 8 songs": a path through the shared space
    (``catalog.song_path``), offered as the last results ("play these" plays it)."""
    from catalog.song_path import song_path as find_path

    action = "action_song_path"
    names = parse.values("track")
    if len(names) < 2:
        return _reply(
            "From which track to which? Say “from Nebula to Battle Music”.", parse, action
        )
    if ctx.search is None:
        return _reply(
            "A song path needs MusicBERT vectors: run `musicbert reindex`.", parse, action
        )
    ends = []
    for name in names[:2]:
        ids, sugg = resolve_tracks(ctx, name)
        if not ids:
            return _reply(_not_found("a track called", name, sugg), parse, action)
        ends.append(ids[0])
    n = _number(parse) or 8
    filters, problems = build_filters(ctx, parse)
    if problems:
        return _reply(" ".join(problems), parse, action)
    path = find_path(
        ctx.search, ends[0], ends[1], n, _search_filters(filters, list(state.rejected))
    )
    why = {s.track_id: f"{s.progress:.0%} of the way" for s in path.steps}
    refs = track_refs(ctx, path.track_ids, why=why)
    state.last_results = [r.id for r in refs]
    state.current_track_id = refs[0].id
    text = (
        f"From {label(refs[0])} to {label(refs[-1])} in {len(refs)} songs; "
        f"{path.explanation()}:\n{numbered(refs)}"
    )
    return _reply(text, parse, action, refs, path=path.to_dict())


def play_history(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply:
    """ "my most played this month", "something I haven't played in a while", "play what
    I liked yesterday": the play history (``catalog.history``); played when asked to play."""
    from assistant.nlu.history_requests import request_kind
    from catalog import history

    action = "action_play_history"
    kind = request_kind(parse.text) or "most_played"
    k = _count(parse, 10 if kind == "most_played" else DEFAULT_RESULTS)
    span = history.window(parse.text)
    since, until = span if span else (None, None)
    when = _history_when(parse.text) if span else ""
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
        return _reply(empty, parse, action)
    plays = {r.track_id: f"played {r.plays}×" if r.plays else "never played" for r in rows}
    refs = track_refs(ctx, [r.track_id for r in rows], why=plays)
    state.last_results = [r.id for r in refs]
    if re.match(r"\s*(?:please\s+)?(?:play|put on|queue|start)\b", parse.text, re.I):
        return queue_tracks(ctx, parse, state, [r.id for r in refs], action, intro=f"{head}:")
    state.current_track_id = refs[0].id
    return _reply(f"{head}:\n{numbered(refs)}", parse, action, refs, history=kind)


def _history_when(text: str) -> str:
    m = re.search(
        r"\b(today|tonight|yesterday|(?:this|last) (?:week|month|year)"
        r"|(?:last|past) \w+ (?:days?|weeks?|months?))\b",
        text,
        re.I,
    )
    return f" {m.group(1).lower()}" if m else ""


def recommend_from_history(ctx: ActionContext, parse: Parse, state: DialogueState) -> Reply | None:
    """ "recommend something" with nothing playing: tracks near the ones played to the end
    (a mix of them), never the ones usually skipped; None without such a history."""
    from catalog.history import taste

    if ctx.search is None:
        return None
    liked = taste(ctx.catalog)
    if not liked.liked:
        return None
    seeds = liked.liked[:5]
    avoid = set(state.rejected) | set(liked.skipped) | set(seeds)
    try:
        hits = ctx.search.mix(seeds, k=_count(parse), filters=_search_filters({}, list(avoid)))
    except MusicBertError:
        return None
    if not hits:
        return None
    refs = hit_refs(ctx, hits)
    state.last_results = [r.id for r in refs]
    state.current_track_id = refs[0].id
    because = ", ".join(label(r) for r in track_refs(ctx, seeds[:3]))
    text = f"Like what you play to the end ({because}):\n{numbered(refs)}"
    if liked.skipped:
        text += f"\n(Leaving out {len(liked.skipped)} track(s) you usually skip.)"
    return _reply(text, parse, "action_recommend", refs, seeds=seeds, avoided=liked.skipped)


def _without_skipped(ctx: ActionContext, state: DialogueState, run: Callable[[], Reply]) -> Reply:
    """Run a search that leaves out the tracks the play history says are usually skipped."""
    from catalog.history import taste

    skipped = taste(ctx.catalog).skipped
    if not skipped:
        return run()
    saved = state.rejected
    state.rejected = list(dict.fromkeys([*saved, *skipped]))
    try:
        return run()
    finally:
        state.rejected = saved


ACTIONS: dict[str, Action] = {
    "greet": greet,
    "goodbye": goodbye,
    "thank": thank,
    "help": help_,
    "out_of_scope": out_of_scope,
    "play_music": play_music,
    "recommend": recommend,
    "search_music": search_music,
    "more_like_this": more_like_this,
    "refine": refine,
    "playback_control": playback_control,
    "playlist_add": playlist_add,
    "playlist_create": playlist_create,
    "playlist_delete": playlist_delete,
    "affirm": affirm,
    "deny": deny,
    "select_item": select_item,
    "reject": reject,
    "playlist_export": playlist_export,
    "song_path": song_path,
    "play_history": play_history,
    **{intent: answer_question for intent in QA_INTENTS},
}
