"""``musicbert stats``: what the library holds, and under which licences.

Thin: ``catalog.queries.library_stats`` gathers the numbers; this prints them
as tables (or all of it as JSON with ``--json``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

EMPTY_HINT = (
    "add music with `musicbert ingest PATH` (folders or files), "
    "or build the free demo library with `musicbert demo`"
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "stats",
        help="counts by artist, album and tag; durations; licence and source of every track",
        description=(
            "Show what the catalog holds: tracks by artist, album and tag, the total "
            "duration, and the licence, source and attribution of every track."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print all of it as JSON")
    parser.add_argument(
        "--top",
        type=int,
        default=10,
        metavar="N",
        help="rows in the artist, album and tag tables (default 10; 0 = all)",
    )
    parser.set_defaults(func=run)


def _cut(text: Any, width: int) -> str:
    text = "-" if text is None or text == "" else str(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(title: str, headers: list[str], rows: list[list[str]], total: int | None = None) -> str:
    """A left-aligned text table; numeric-looking columns are right-aligned."""
    shown = title
    if total is not None and total > len(rows):
        shown = f"{title} (top {len(rows)} of {total})"
    columns = range(len(headers))
    widths = [max([len(headers[i])] + [len(r[i]) for r in rows]) for i in columns]
    numeric = [bool(rows) and all(r[i].replace(":", "").isdigit() for r in rows) for i in columns]

    def line(cells: list[str]) -> str:
        parts = [
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(cells, widths, numeric, strict=True)
        ]
        return "  " + "  ".join(parts).rstrip()

    out = [shown, line(headers), "  " + "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows] or ["  (none)"]
    return "\n".join(out)


def _loudness_line(loudness: dict[str, Any]) -> str:
    if not loudness.get("measured"):
        return "Loudness (LUFS): not measured yet (re-run `musicbert ingest` to analyse)."
    quiet, loud = loudness["quietest"], loudness["loudest"]
    return (
        f"Loudness (integrated, ITU-R BS.1770): {loudness['measured']} tracks, median "
        f"{loudness['median_lufs']:.1f} LUFS; quietest {_cut(quiet['title'], 40)} "
        f"({quiet['lufs']:.1f}), loudest {_cut(loud['title'], 40)} ({loud['lufs']:.1f})."
    )


def render(stats: dict[str, Any], top: int = 10) -> str:
    """The readable report of ``library_stats`` output."""
    from catalog.queries import duration_text as _time

    if not stats["tracks"]:
        return f"The catalog at {stats['database']} is empty: {EMPTY_HINT}."
    limit = top if top and top > 0 else None
    artists, albums, tags = stats["by_artist"], stats["by_album"], stats["by_tag"]
    embeddings = ", ".join(f"{n} for {m}" for m, n in stats["embeddings"].items()) or "none"
    parts = [
        f"Catalog: {stats['database']}",
        f"{stats['tracks']} tracks, {stats['artists']} artists, {stats['albums']} albums, "
        f"{stats['tags']} tag names; total duration {_time(stats['total_duration'])}",
        f"Analysed: {stats['analysed']} tracks. Embeddings: {embeddings}. "
        f"Playlists: {stats['playlists']}. Plays: {stats['plays']}.",
        _loudness_line(stats["loudness"]),
        "",
        _table(
            "By artist",
            ["tracks", "duration", "artist"],
            [
                [str(a["tracks"]), _time(a["duration"]), _cut(a["artist"] or "(no artist)", 50)]
                for a in artists[:limit]
            ],
            len(artists),
        ),
        "",
        _table(
            "By album",
            ["tracks", "duration", "album", "artist"],
            [
                [
                    str(a["tracks"]),
                    _time(a["duration"]),
                    _cut(a["album"], 40),
                    _cut(a["artist"], 30),
                ]
                for a in albums[:limit]
            ],
            len(albums),
        ),
        "",
        _table(
            "By tag",
            ["tracks", "kind", "tag"],
            [[str(t["tracks"]), t["kind"], _cut(t["tag"], 50)] for t in tags[:limit]],
            len(tags),
        ),
        "",
        _table(
            "Licences and sources",
            ["tracks", "duration", "licence", "source", "attribution"],
            [
                [
                    str(g["tracks"]),
                    _time(g["duration"]),
                    _cut(g["licence"] or "(unknown)", 24),
                    _cut(g["source"], 40),
                    _cut(g["attribution"], 60),
                ]
                for g in stats["by_licence"]
            ],
        ),
        "",
        _table(
            "Every track",
            ["id", "duration", "LUFS", "title", "artist", "licence", "source"],
            [
                [
                    str(t["id"]),
                    _time(t["duration"]),
                    "-" if t["loudness_lufs"] is None else f"{t['loudness_lufs']:.1f}",
                    _cut(t["title"], 40),
                    _cut(t["artist"], 24),
                    _cut(t["licence"] or "(unknown)", 20),
                    _cut(t["source"], 40),
                ]
                for t in stats["track_list"]
            ],
        ),
    ]
    return "\n".join(parts)


def run(args: argparse.Namespace) -> int:
    from catalog.db import open_catalog
    from catalog.queries import library_stats

    with open_catalog(args.db) as catalog:
        stats = library_stats(catalog)
    if args.json:
        if not stats["tracks"]:
            stats["hint"] = EMPTY_HINT
        print(json.dumps(stats, indent=2, ensure_ascii=False))
    else:
        print(render(stats, args.top))
    return 0
