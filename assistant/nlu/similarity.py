"""Asking for music like a named track or artist is ``more_like_this``, whatever the verb.

"play something similar to Nebula", "put on tracks like Awakening", "music in the style
of Maxstack", "songs that sound like Battle Epic": the classifier hears "play ... Song
Title" and says play_music. When a phrase of likeness ("similar to", "like", "in the style
of", "reminiscent of", ...) leads straight into a track or artist name, the utterance asks
for tracks near that one. "Something like jazz" (a genre) stays a search, and "I'd like
Nebula" (the verb) stays a request to play it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.turn import Entity

#: The intent an utterance becomes when it asks for music like a named track or artist.
SIMILAR_INTENT = "more_like_this"
#: Intents that ask for music; only these are read again.
REQUEST_INTENTS = ("play_music", "search_music", "recommend")
#: Names a likeness can point at.
SEED_TYPES = ("track", "artist")
_LIKENESS = re.compile(
    r"(?:\bsimilar\s+(?:to|with)|\bakin\s+to|\bclose\s+to|\bcomparable\s+to|\breminiscent\s+of"
    r"|\bresembl(?:e|es|ing)|\bin\s+the\s+(?:style|vein|spirit|mould|mold)\s+of"
    r"|\balong\s+the\s+lines\s+of|\b(?:sounds?|sounding|feels?)\s+like"
    r"|\blike)"
    r"\s+(?:(?:the\s+)?(?:songs?|tracks?|music|stuff|ones?|one)\s+(?:by|of|from)\s+)?(?:the\s+)?$",
    re.I,
)
#: "like" as a verb: "I'd like", "would like", "I really like".
_LIKE_VERB = re.compile(
    r"\b(?:i|i'd|id|we|we'd|you|you'd|they|would|'d|really|do|don't|dont|also|to)\s+like\s*$",
    re.I,
)


def asks_for_similar(text: str, entities: Sequence[Entity]) -> bool:
    """Whether a likeness phrase leads straight into a track or artist name."""
    for e in entities:
        if e.entity not in SEED_TYPES:
            continue
        before = text[: e.start]
        if _LIKENESS.search(before) and not _LIKE_VERB.search(before):
            return True
    return False


def reroute(intent: str, text: str, entities: Sequence[Entity]) -> str | None:
    """``more_like_this`` for a request that names its seed by likeness, else None."""
    if intent in REQUEST_INTENTS and asks_for_similar(text, entities):
        return SIMILAR_INTENT
    return None
