"""``musicbert playlist list|show|export|import``: playlists in and out of the catalog.

Thin: ``catalog.playlists`` does the work (M3U8 and XSPF, matching by path then by
artist and title); this parses the arguments and prints, or prints JSON with ``--json``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "playlist",
        help="list, show, export (M3U8, XSPF) and import playlists",
        description=(
            "Playlists made in the chat live in the catalog. Export one as M3U8 (paths "
            "relative to the file, or --absolute) or XSPF for VLC, mpv or Navidrome; import "
            "an M3U/M3U8/XSPF file: entries are matched by path, then by artist and title, "
            "and what matched nothing is listed."
        ),
    )
    sub = parser.add_subparsers(dest="playlist_command", metavar="ACTION", required=True)
    p = sub.add_parser("list", help="every playlist with its track count and length")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_list)
    p = sub.add_parser("show", help="the tracks of one playlist")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_show)
    p = sub.add_parser("export", help="write a playlist as .m3u8 or .xspf")
    p.add_argument("name")
    p.add_argument("--out", "-o", default=".", help="file (.m3u8 / .xspf) or folder (default .)")
    p.add_argument("--format", choices=("m3u8", "xspf"), help="default: from --out, else m3u8")
    p.add_argument("--absolute", action="store_true", help="absolute paths (default relative)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_export)
    p = sub.add_parser("import", help="read an .m3u/.m3u8/.xspf file into a playlist")
    p.add_argument("file")
    p.add_argument("--name", help="playlist name (default: the file's title or name)")
    p.add_argument("--replace", action="store_true", help="replace the playlist's tracks")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_import)


def _catalog(args):
    from catalog.db import open_catalog

    return open_catalog(args.db)


def run_list(args) -> int:
    from catalog.playlists import list_playlists
    from catalog.queries import duration_text

    with _catalog(args) as catalog:
        rows = list_playlists(catalog)
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2, ensure_ascii=False))
    elif not rows:
        print("No playlists yet: in the chat, say “add this to road trip”, or import a file.")
    else:
        for r in rows:
            print(f"{r.name}  ({r.tracks} track{'s' if r.tracks != 1 else ''}, "
                  f"{duration_text(r.seconds)})")  # fmt: skip
    return 0


def run_show(args) -> int:
    from assistant.render import track_table
    from assistant.turn import TrackRef
    from catalog.playlists import playlist_entries

    with _catalog(args) as catalog:
        name, entries = playlist_entries(catalog, args.name)
    if args.json:
        print(json.dumps({"name": name, "tracks": [asdict(e) for e in entries]}, indent=2,
                         ensure_ascii=False))  # fmt: skip
        return 0
    refs = [
        TrackRef(e.track_id or 0, e.title or "", e.artist, e.album, e.duration) for e in entries
    ]
    print(f"{name}: {len(entries)} track{'s' if len(entries) != 1 else ''}")
    if refs:
        print(track_table(refs))
    return 0


def run_export(args) -> int:
    from catalog.playlists import export_playlist

    with _catalog(args) as catalog:
        path, n = export_playlist(
            catalog, args.name, Path(args.out), args.format, relative=not args.absolute
        )
    if args.json:
        print(json.dumps({"name": args.name, "file": str(path), "tracks": n}))
    else:
        print(f"wrote {path} ({n} track{'s' if n != 1 else ''})")
    return 0


def run_import(args) -> int:
    from catalog.playlists import import_playlist

    with _catalog(args) as catalog:
        result = import_playlist(catalog, args.file, args.name, replace=args.replace)
    if args.json:
        print(json.dumps(asdict(result), indent=2, ensure_ascii=False))
        return 0
    print(
        f"{'created' if result.created else 'updated'} “{result.name}”: "
        f"{len(result.matched)} matched ({result.by_path} by path, {result.by_name} by artist "
        f"and title), {len(result.unmatched)} not found"
    )
    for entry in result.unmatched:
        print(f"  not in the library: {entry}")
    return 0
