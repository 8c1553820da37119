"""Counts, totals, superlatives and filtered lists over the whole library."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from assistant.qa.answer import Answer, dont_know
from assistant.qa.audio_facts import loudness_measure
from assistant.qa.library import Snapshot, TrackInfo
from assistant.qa.question_filters import Filters
from assistant.qa.text import format_duration, join_names

#: The track attribute each superlative reads, and how it is shown.
MEASURES = {
    "tempo": (lambda t: t.tempo, lambda v: f"{v:.0f} BPM"),
    "duration": (lambda t: t.duration, format_duration),
    "loudness": (
        lambda t: t.loudness_lufs,
        lambda v: f"{v:.1f} LUFS",
    ),  # audio_facts.loudness_measure
    "year": (lambda t: t.year, str),
}
WORDS = {
    ("tempo", "max"): "fastest",
    ("tempo", "min"): "slowest",
    ("duration", "max"): "longest",
    ("duration", "min"): "shortest",
    ("loudness", "max"): "loudest",
    ("loudness", "min"): "quietest",
    ("year", "max"): "newest",
    ("year", "min"): "oldest",
}


#: A test for "does this track have label X" (given by the engine's content model).
LabelTest = Callable[[TrackInfo, str, str], bool]


def apply_filters(
    snapshot: Snapshot, f: Filters, has_label: LabelTest | None = None
) -> list[TrackInfo]:
    """The snapshot's tracks meeting ``f`` (``SearchFilters.matches``) and its content label."""
    out = [
        t
        for t in snapshot.tracks.values()
        if f.matches(t)
        and not (f.label and has_label is not None and not has_label(t, f.label_family, f.label))
    ]
    return sorted(out, key=lambda t: (t.title.casefold(), t.id))


def _needs_analysis(f: Filters) -> bool:
    return bool(f.mode or f.key or f.tempo_min is not None or f.tempo_max is not None)


def _scope(f: Filters, n: int | None = None) -> str:
    text = f.describe()
    noun = "track" if n == 1 else "tracks"
    return f"{noun} {text}" if text else f"{noun} in the library"


def answer_count(snapshot: Snapshot, f: Filters, has_label: LabelTest | None = None) -> Answer:
    tracks = apply_filters(snapshot, f, has_label)
    unanalysed = sum(1 for t in snapshot.tracks.values() if not t.analysed)
    text = f"There {'is' if len(tracks) == 1 else 'are'} {len(tracks)} {_scope(f, len(tracks))}."
    if _needs_analysis(f) and unanalysed:
        text += f" ({unanalysed} tracks are not analysed yet and could not be counted.)"
    return Answer(
        text, len(tracks), track_ids=[t.id for t in tracks], facts={"filters": f.describe()}
    )


def answer_count_artists(snapshot: Snapshot) -> Answer:
    artists = sorted({t.artist for t in snapshot.tracks.values() if t.artist})
    return Answer(
        f"The library has tracks by {len(artists)} artists: {join_names(artists)}.",
        len(artists),
        facts={"artists": artists},
    )


def answer_count_albums(snapshot: Snapshot, f: Filters) -> Answer:
    albums = sorted({t.album for t in apply_filters(snapshot, f) if t.album})
    return Answer(
        f"There are {len(albums)} albums {f.describe()}".rstrip() + f": {join_names(albums)}.",
        len(albums),
        facts={"albums": albums},
    )


def answer_total_duration(
    snapshot: Snapshot, f: Filters, has_label: LabelTest | None = None
) -> Answer:
    tracks = apply_filters(snapshot, f, has_label)
    if not tracks:
        return dont_know("no_match", f"there are no {_scope(f)}.")
    total = sum(t.duration or 0.0 for t in tracks)
    return Answer(
        f"The {len(tracks)} {_scope(f)} last {format_duration(total)} together "
        f"({total / 60:.1f} minutes).",
        round(total, 1),
        track_ids=[t.id for t in tracks],
        facts={"tracks": len(tracks)},
    )


def answer_superlative(
    snapshot: Snapshot,
    attribute: str,
    direction: str,
    f: Filters,
    has_label: LabelTest | None = None,
) -> Answer:
    getter, show = MEASURES[attribute]
    pool = apply_filters(snapshot, f, has_label)
    if attribute == "loudness":
        getter, show = loudness_measure(pool)
    valued = [(getter(t), t) for t in pool if getter(t) is not None]
    word = WORDS[(attribute, direction)]
    if not valued:
        if pool and attribute in ("tempo", "loudness"):
            return dont_know(
                "no_analysis", f"none of the {_scope(f)} has been analysed for {attribute} yet."
            )
        return dont_know("no_match", f"there are no {_scope(f)} with a known {attribute}.")
    valued.sort(key=lambda vt: (vt[0], vt[1].id), reverse=direction == "max")
    best_value, best = valued[0]
    ties = [t for v, t in valued if v == best_value]
    missing = len(pool) - len(valued)
    text = f"The {word} of the {len(valued)} {_scope(f)} is {best.label} at {show(best_value)}"
    if len(valued) > 1:
        v2, t2 = valued[1]
        text += f"; next is {t2.label} at {show(v2)}"
    text += "."
    if missing:
        text += f" ({missing} without a known {attribute} were left out.)"
    value = best.title if len(ties) == 1 else [t.title for t in ties]
    return Answer(
        text,
        value,
        track_ids=[t.id for t in ties],
        facts={"attribute": attribute, "value": best_value, "direction": direction},
    )


def answer_list(snapshot: Snapshot, f: Filters, has_label: LabelTest | None = None) -> Answer:
    tracks = apply_filters(snapshot, f, has_label)
    unanalysed = sum(1 for t in snapshot.tracks.values() if not t.analysed)
    if not tracks:
        if _needs_analysis(f) and unanalysed == len(snapshot.tracks):
            return dont_know("no_analysis", "no track has been analysed yet.")
        return Answer(f"None: there are no {_scope(f)}.", [], facts={"filters": f.describe()})
    titles = [t.label for t in tracks]
    text = f"{len(tracks)} {_scope(f)}: {join_names(titles)}."
    if _needs_analysis(f) and unanalysed:
        text += f" ({unanalysed} tracks are not analysed yet.)"
    return Answer(
        text,
        [t.title for t in tracks],
        track_ids=[t.id for t in tracks],
        facts={"filters": f.describe()},
    )


def answer_stats(snapshot: Snapshot) -> Answer:
    """A summary of the library: counts, total length, what has been analysed."""
    tracks = list(snapshot.tracks.values())
    total = sum(t.duration or 0 for t in tracks)
    artists = {t.artist for t in tracks if t.artist}
    albums = {t.album for t in tracks if t.album}
    analysed = sum(1 for t in tracks if t.analysed)
    embedded = len({i for ids, _ in snapshot.embeddings.values() for i in ids})
    scores = sum(1 for t in tracks if t.score_ref)
    facts = {
        "tracks": len(tracks),
        "artists": len(artists),
        "albums": len(albums),
        "total_seconds": round(total, 1),
        "analysed": analysed,
        "embedded": embedded,
        "from_scores": scores,
    }
    text = (
        f"Your library has {len(tracks)} tracks by {len(artists)} artists on {len(albums)} "
        f"albums, {format_duration(total)} in all; {analysed} analysed, {embedded} embedded"
        + (f", {scores} rendered from scores" if scores else "")
        + "."
    )
    return Answer(text, len(tracks), facts=facts)


def answer_average(
    snapshot: Snapshot, attribute: str, f: Filters, has_label: LabelTest | None = None
) -> Answer:
    getter, show = MEASURES[attribute]
    values = [getter(t) for t in apply_filters(snapshot, f, has_label)]
    values = [v for v in values if v is not None]
    if not values:
        return dont_know(
            "no_analysis" if attribute in ("tempo", "loudness") else "no_match",
            f"no {_scope(f)} has a known {attribute}.",
        )
    mean = sum(values) / len(values)
    return Answer(
        f"The average {attribute} of the {len(values)} {_scope(f)} is {show(mean)}.",
        round(mean, 1),
        facts={"n": len(values)},
    )


def answer_top_artist(snapshot: Snapshot, f: Filters) -> Answer:
    counts = Counter(t.artist for t in apply_filters(snapshot, f) if t.artist)
    if not counts:
        return dont_know("no_match", "no track in the library has an artist.")
    top = counts.most_common()
    best = [a for a, n in top if n == top[0][1]]
    runner = [f"{a} ({n})" for a, n in top[len(best) : len(best) + 2]]
    text = f"{join_names(best)} {'has' if len(best) == 1 else 'have'} the most tracks: {top[0][1]}"
    text += f"; then {join_names(runner)}." if runner else "."
    return Answer(text, best[0] if len(best) == 1 else best, facts=dict(top[:5]))
