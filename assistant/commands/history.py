"""``musicbert history [most-played|played|not-lately] [--when "this month"] [--days 30]
[-k 10] [--json]``: the play history.

Thin: ``catalog.history`` answers; this prints a table (or JSON).
"""

from __future__ import annotations

import json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "history",
        help="most played, played in a window, or not played lately (from the play history)",
        description=(
            "Read the play history: the most played tracks, the tracks played in a window "
            "('today', 'yesterday', 'this week', 'last month', 'last 7 days'), or the tracks "
            "not played in the last N days."
        ),
    )
    parser.add_argument("what", nargs="?", default="most-played",
                        choices=("most-played", "played", "not-lately"))  # fmt: skip
    parser.add_argument("--when", help="a window, e.g. 'this month', 'yesterday', 'last 7 days'")
    parser.add_argument("--days", type=float, default=30, help="not-lately: days (default 30)")
    parser.add_argument("--never", action="store_true", help="not-lately: add never-played ones")
    parser.add_argument("-k", type=int, default=10, help="how many tracks (default 10)")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run)


def run(args) -> int:
    from assistant.render import track_table
    from assistant.turn import TrackRef
    from catalog import history
    from catalog.db import open_catalog
    from catalog.queries import track_rows
    from musicbert.errors import ConfigError

    span = history.window(args.when) if args.when else None
    if args.when and span is None:
        raise ConfigError(f"--when {args.when!r}: say e.g. 'today', 'this month', 'last 7 days'")
    since, until = span or (None, None)
    with open_catalog(args.db) as catalog:
        if args.what == "most-played":
            rows = history.most_played(catalog, since, until, args.k)
        elif args.what == "played":
            rows = history.played_in(catalog, since, until, args.k)
        else:
            rows = history.not_played_lately(catalog, args.days, args.k, args.never)
        tracks = {t.id: t for t in track_rows(catalog, [r.track_id for r in rows])}
        out = []
        for r in rows:
            t = tracks[r.track_id]
            out.append({
                "track_id": r.track_id, "title": t.title,
                "artist": t.artist.name if t.artist else None, "plays": r.plays,
                "last_played": r.last_played.isoformat() if r.last_played else None,
                "album": t.album.title if t.album else None, "duration": t.duration,
            })  # fmt: skip
    if args.json:
        print(json.dumps({"what": args.what, "when": args.when, "tracks": out}, indent=2,
                         ensure_ascii=False))  # fmt: skip
        return 0
    if not out:
        print("nothing in the play history for that")
        return 0
    refs = [
        TrackRef(o["track_id"], o["title"], o["artist"], o["album"], o["duration"],
                 why=f"played {o['plays']}×" if o["plays"] else "never played")
        for o in out
    ]  # fmt: skip
    print(track_table(refs))
    return 0
