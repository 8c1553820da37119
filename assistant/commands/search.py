"""``musicbert search TEXT`` and ``musicbert similar TRACK``: find tracks, print a table or JSON."""

from __future__ import annotations

import argparse
import json
import sys
import warnings

#: The text tower reads at most 256 tokens (about 1,000 characters of English); a longer
#: query is cut to this many characters before anything reads it, and said so once.
MAX_QUERY_CHARS = 2000
#: How much of a long query the JSON output repeats.
ECHO_CHARS = 200


def _add_filters(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters (all must hold)")
    group.add_argument(
        "--artist", help="artist name (case-insensitive, part of the name is enough)"
    )
    group.add_argument("--album", help="album title (case-insensitive, part is enough)")
    group.add_argument("--tag", action="append", help="a tag the track has (repeat for several)")
    group.add_argument("--year", metavar="RANGE", help="e.g. 1990-2000, 1995, 2000-")
    group.add_argument("--tempo", metavar="RANGE", help="beats per minute, e.g. 60-90")
    group.add_argument("--key", help="e.g. 'F# minor', 'Bb', 'minor'")
    group.add_argument("--duration", metavar="RANGE", help="seconds or m:ss, e.g. 1:00-5:00")
    group.add_argument("--licence", "--license", dest="licence", help="e.g. CC-BY")
    group.add_argument(
        "--exclude-recent", type=int, default=0, metavar="N", help="skip the last N tracks played"
    )


def register(subparsers) -> None:
    search = subparsers.add_parser(
        "search",
        help="find tracks matching a description ('calm piano')",
        description="Embed the description with MusicBERT's text tower and return the nearest "
        "tracks in the shared audio-text space, within the filters given.",
    )
    search.add_argument("query", help="what the music should be like")
    search.add_argument("-k", type=int, default=10, help="how many tracks (default 10)")
    search.add_argument(
        "--diverse",
        type=float,
        default=0.0,
        metavar="D",
        help="0..1: trade closeness for variety among the results (MMR)",
    )
    _add_filters(search)
    search.add_argument("--json", action="store_true", help="print the results as JSON")
    search.set_defaults(func=run_search)

    similar = subparsers.add_parser(
        "similar",
        help="find tracks that sound like a track (by id or title)",
        description="Tracks nearest to one track's MusicBERT audio embedding.",
    )
    similar.add_argument("track", help="track id or title")
    similar.add_argument("-k", type=int, default=10, help="how many tracks (default 10)")
    _add_filters(similar)
    similar.add_argument("--json", action="store_true", help="print the results as JSON")
    similar.set_defaults(func=run_similar)


def filters_from(args: argparse.Namespace):
    from catalog.filters import SearchFilters, parse_range

    filters = SearchFilters(
        artist=args.artist,
        album=args.album,
        tag=args.tag or None,
        key=args.key,
        licence=args.licence,
        exclude_recent=args.exclude_recent,
    )
    for option, low, high, clock in (
        ("year", "year_min", "year_max", False),
        ("tempo", "tempo_min", "tempo_max", False),
        ("duration", "duration_min", "duration_max", True),
    ):
        text = getattr(args, option)
        if text:
            lo, hi = parse_range(text, clock=clock)
            if option == "year":
                lo, hi = (None if lo is None else int(lo)), (None if hi is None else int(hi))
            setattr(filters, low, lo)
            setattr(filters, high, hi)
    return filters


def open_engine(args: argparse.Namespace):
    from assistant.model_loader import load_embedder
    from catalog.db import open_catalog
    from catalog.search import SearchEngine

    catalog = open_catalog(args.db)
    return catalog, SearchEngine(catalog, load_embedder(args.checkpoint, catalog))


def _report(engine, hits, args: argparse.Namespace, request: dict, weak: bool | None = None) -> int:
    """Print hits; ``weak`` (text searches only): they are the closest, not good matches."""
    notices = [n for n in engine.notices if n and not n.startswith(("loaded", "index up to"))]
    if args.json:
        extra = {} if weak is None else {"good_match": not weak}
        print(
            json.dumps(
                {
                    **request,
                    "model_id": engine.model_id,
                    **extra,
                    "results": [hit.to_dict() for hit in hits],
                    "notices": notices,
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return 0
    for notice in notices:
        print(f"musicbert: {notice}", file=sys.stderr)
    if weak:
        print(f"no good match for {_echo(request.get('query', ''))!r}; the closest tracks are:")
    print(format_table(hits))
    return 0


def _cut_query(query: str) -> tuple[str, bool]:
    """The query as the engine gets it (at most MAX_QUERY_CHARS, cut at a space)."""
    if len(query) <= MAX_QUERY_CHARS:
        return query, False
    cut = query[:MAX_QUERY_CHARS]
    space = cut.rfind(" ")
    return (cut[:space] if space > MAX_QUERY_CHARS // 2 else cut), True


def _echo(query: str) -> str:
    return query if len(query) <= ECHO_CHARS else query[: ECHO_CHARS - 1] + "…"


def run_search(args: argparse.Namespace) -> int:
    from musicbert.text_tower import TextTruncatedWarning

    filters = filters_from(args)
    query, cut = _cut_query(args.query)
    catalog, engine = open_engine(args)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TextTruncatedWarning)
            hits = engine.search(query, k=args.k, filters=filters, diversity=args.diverse)
        notes = []
        truncated = cut or any(issubclass(w.category, TextTruncatedWarning) for w in caught)
        if truncated:
            notes.append(
                f"the query is long ({len(args.query):,} characters); only its beginning "
                "was read (the model reads at most 256 word pieces)"
            )
        notes += [
            str(w.message).splitlines()[0]
            for w in caught
            if not issubclass(w.category, TextTruncatedWarning) and str(w.message).strip()
        ]
        for note in dict.fromkeys(notes):
            print(f"musicbert: note: {note}", file=sys.stderr)
        request = {"query": _echo(args.query), "k": args.k, "filters": filters.describe()}
        if truncated:
            request["query_chars"] = len(args.query)
        return _report(engine, hits, args, request, weak=engine.no_good_match(query, hits))
    finally:
        catalog.close()


def run_similar(args: argparse.Namespace) -> int:
    filters = filters_from(args)
    catalog, engine = open_engine(args)
    try:
        seed = engine.resolve_track(args.track)
        hits = engine.similar(seed, k=args.k, filters=filters)
        request = {"track": args.track, "track_id": seed, "k": args.k}
        return _report(engine, hits, args, request)
    finally:
        catalog.close()


def _cut(text: str | None, width: int) -> str:
    text = text or "-"
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(hits) -> str:
    """Rank, score, id, title, artist, album, and the reasons, one track per line."""
    header = f"{'#':>3}  {'score':>6}  {'id':>6}  {'title':30}  {'artist':20}  {'album':20}  why"
    lines = [header, "-" * len(header)]
    for rank, hit in enumerate(hits, 1):
        lines.append(
            f"{rank:>3}  {hit.score:6.3f}  {hit.track_id:>6}  {_cut(hit.title, 30):30}  "
            f"{_cut(hit.artist, 20):20}  {_cut(hit.album, 20):20}  {'; '.join(hit.why)}"
        )
    return "\n".join(lines)
