"""``musicbert path FROM TO [-n 8] [filters] [--json]``: a song path between two tracks.

Thin: ``catalog.song_path.song_path`` picks the tracks; this prints them with how far
along the way each one is, and the explanation ("each step moves from electronic
towards orchestral").
"""

from __future__ import annotations

import json


def register(subparsers) -> None:
    from assistant.commands.search import _add_filters

    parser = subparsers.add_parser(
        "path",
        help="a song path: N tracks that move steadily from one track to another",
        description=(
            "From one track to another in N songs (both included): each track between is "
            "close to the one before and further along the way, none twice, within the "
            "filters given (they narrow the tracks between)."
        ),
    )
    parser.add_argument("start", help="first track (id or title)")
    parser.add_argument("end", help="last track (id or title)")
    parser.add_argument("-n", "--songs", type=int, default=8, help="songs in all (default 8)")
    _add_filters(parser)
    parser.add_argument("--json", action="store_true", help="print the path as JSON")
    parser.set_defaults(func=run)


def run(args) -> int:
    from assistant.commands.search import filters_from, open_engine
    from assistant.render import track_table
    from assistant.turn import TrackRef
    from catalog.queries import track_rows
    from catalog.song_path import song_path

    catalog, engine = open_engine(args)
    with catalog:
        path = song_path(engine, args.start, args.end, args.songs, filters_from(args))
        rows = {t.id: t for t in track_rows(catalog, path.track_ids)}
        refs = []
        for step in path.steps:
            t = rows[step.track_id]
            refs.append(
                TrackRef(t.id, t.title, t.artist.name if t.artist else None,
                         t.album.title if t.album else None, t.duration,
                         why=f"{step.progress:.0%} of the way")
            )  # fmt: skip
    if args.json:
        doc = path.to_dict()
        for step, ref in zip(doc["steps"], refs, strict=True):
            step.update(title=ref.title, artist=ref.artist)
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    print(f"{refs[0].title} -> {refs[-1].title} in {len(refs)} songs: {path.explanation()}")
    print(track_table(refs))
    return 0
