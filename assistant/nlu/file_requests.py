"""Requests to write something to a file: "export road trip", "save road trip as xspf";
and to keep what was shown as a playlist: "save these as road trip".

The intent classifier knows playlists only inside the library (create, add, delete), so
"export road trip" reads as adding to it. An utterance whose verb asks for a file
("export", "write out", "save ... to a file / as m3u / as xspf", "download") and that
names a playlist is ``playlist_export``; the action writes M3U8 (or XSPF when named).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.nlu.entity_patterns import SAVE_AS
from assistant.nlu.spans import Candidate

EXPORT_INTENT = "playlist_export"
_EXPORT = re.compile(
    r"^\W*(?:(?:please|can you|could you|would you)\s+)?(?:export|download)\b"
    r"|\b(?:export|download)\b.*\bplaylist\b"
    r"|\b(?:save|write|put|dump)\b.*\b(?:to|into|in|as)\s+(?:an?\s+)?"
    r"(?:file|m3u8?|xspf|disk|folder)\b"
    r"|\bwrite\b.*\bout\b",
    re.I,
)
FILE_WORDS = {"file", "m3u", "m3u8", "xspf", "disk", "folder"}


def asks_for_export(text: str, cands: Sequence[Candidate]) -> bool:
    return bool(_EXPORT.search(text)) and any(
        c.entity == "playlist" and text[c.start : c.end].lower() not in FILE_WORDS for c in cands
    )


def reroute(intent: str, text: str, cands: Sequence[Candidate]) -> str | None:
    """``playlist_export`` for "export road trip"; ``playlist_add`` for "save these as road
    trip" (the list just shown becomes, or joins, that playlist)."""
    if asks_for_export(text, cands):
        if intent.startswith("playlist_") or intent in ("play_music", "out_of_scope"):
            return EXPORT_INTENT
    elif (
        not intent.startswith("playlist_")
        and SAVE_AS.search(text)
        and any(
            c.entity == "playlist" and text[c.start : c.end].lower() not in FILE_WORDS
            for c in cands
        )
    ):
        return "playlist_add"
    return None
