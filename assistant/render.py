"""Replies as terminal text: the answer, then its tracks as a table that fits the window.

Plain text (no colour codes) so the same output works in the chat, in
``musicbert ask``, in a pipe and in a test.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence

from assistant.turn import Reply, TrackRef


def duration(seconds: float | None) -> str:
    """m:ss or h:mm:ss, empty when unknown (imported on first use: the chat starts faster)."""
    from catalog.queries import duration_text

    return "" if seconds is None else duration_text(seconds)


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def track_table(tracks: Sequence[TrackRef], width: int | None = None) -> str:
    """A numbered table (title, artist, album, length, why); long cells are shortened."""
    if not tracks:
        return ""
    width = width or shutil.get_terminal_size((100, 24)).columns
    rows = [
        [
            str(i),
            t.title or "",
            t.artist or "",
            t.album or "",
            duration(t.duration),
            t.why or "",
        ]
        for i, t in enumerate(tracks, 1)
    ]
    header = ["#", "Title", "Artist", "Album", "Time", "Why"]
    columns = [i for i in range(len(header)) if i < 2 or any(r[i] for r in rows)]
    widths = {i: max(len(header[i]), *(len(r[i]) for r in rows)) for i in columns}
    # shrink the widest text columns until the table fits
    budget = width - 2 * (len(columns) - 1)
    shrinkable = [i for i in columns if i in (1, 2, 3, 5)]
    while sum(widths.values()) > budget and shrinkable:
        widest = max(shrinkable, key=lambda i: widths[i])
        if widths[widest] <= 8:
            break
        widths[widest] -= 1
    lines = ["  ".join(_fit(header[i], widths[i]).ljust(widths[i]) for i in columns).rstrip()]
    lines.append("  ".join("-" * widths[i] for i in columns))
    for r in rows:
        cells = []
        for i in columns:
            cell = _fit(r[i], widths[i])
            cells.append(cell.rjust(widths[i]) if i in (0, 4) else cell.ljust(widths[i]))
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _list_line(n: int, t: TrackRef) -> str:
    """One line of the numbered list an answer's text gives for speech and Rasa."""
    return f"{n}. “{t.title}”" + (f" by {t.artist}" if t.artist else "")


def reply_text(reply: Reply, width: int | None = None) -> str:
    """The answer and, when it has tracks, the table under it: each track shown once.

    An answer's text lists its tracks ("1. “Nebula” by Maxstack") so that it reads
    (and speaks) alone; on a terminal the table shows them, so the text's own list
    lines are left out.
    """
    table = track_table(reply.tracks, width)
    if not table:
        return reply.text
    listed = {_list_line(n, t) for n, t in enumerate(reply.tracks, 1)}
    text = "\n".join(line for line in reply.text.splitlines() if line.strip() not in listed)
    return f"{text.rstrip()}\n{table}"
