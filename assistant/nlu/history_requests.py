"""Requests about what was played: "my most played this month", "something I haven't
played in a while", "play what I liked yesterday".

The intent classifier has no intent for the play history; these wordings are
recognised by their shape (a first-person verb of listening with a time, "most played",
"haven't ... in a while") and become ``play_history``, whose action reads
``catalog.history``. ``request_kind`` tells the action which question it is.
"""

from __future__ import annotations

import re

HISTORY_INTENT = "play_history"
_LISTEN = r"(?:play(?:ed)?|heard|hear|listen(?:ed)?\s+to|liked|loved|enjoyed)"
_MOST = re.compile(
    r"\bmost\s+(?:played|listened|heard)\b|\bplayed\s+(?:the\s+)?most\b|\btop\s+(?:tracks|songs)\b"
    r"|\bplay(?:ed)?\s+(?:the\s+)?most\s+often\b",
    re.I,
)
_NOT_LATELY = re.compile(
    rf"\b(?:haven'?t|have\s+not|didn'?t|did\s+not|not)\s+(?:\w+\s+){{0,2}}?{_LISTEN}\b.*"
    r"\b(?:in\s+a\s+(?:while|long\s+time)|for\s+a\s+(?:while|long\s+time)|lately|recently"
    r"|in\s+ages|for\s+ages|in\s+months|for\s+months|in\s+weeks)\b"
    r"|\b(?:forgotten|neglected)\s+(?:tracks|songs|music|favou?rites)\b",
    re.I,
)
_WHEN = (
    r"(?:today|tonight|this\s+morning|yesterday|(?:this|last)\s+(?:week|month|year)"
    r"|(?:in\s+the\s+)?(?:last|past)\s+(?:\d+|two|three|four|five|six|seven)\s+(?:days?|weeks?|months?))"
)
_PLAYED_IN = re.compile(
    rf"\b(?:i|we)\s+(?:\w+\s+)?{_LISTEN}\b.*\b{_WHEN}\b|\b{_LISTEN}\s+{_WHEN}\b", re.I
)


def request_kind(text: str) -> str | None:
    """ "most_played", "not_lately", "played_in", or None."""
    if _MOST.search(text):
        return "most_played"
    if _NOT_LATELY.search(text):
        return "not_lately"
    if _PLAYED_IN.search(text):
        return "played_in"
    return None
