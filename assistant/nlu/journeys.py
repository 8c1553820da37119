"""A song path asked for: "take me from Nebula to Battle Music in 8 songs".

An utterance that names one track after "from" and another after "to" / "towards" /
"into" asks for a path between them (``song_path``), whatever the classifier made of it
("play ... Song Title" reads as play_music). The number, when given, is the songs in all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.turn import Entity

PATH_INTENT = "song_path"
_FROM = re.compile(r"\bfrom\b", re.I)
_TO = re.compile(r"\b(?:to|towards?|into|until|till|and end (?:with|on))\b", re.I)


def path_ends(text: str, entities: Sequence[Entity]) -> tuple[Entity, Entity] | None:
    """The two tracks a path runs between: "from" leads straight into the first and "to"
    straight into the second, with nothing else between them; None when there are none."""
    tracks = [e for e in entities if e.entity == "track"]
    for first, second in zip(tracks, tracks[1:], strict=False):
        lead = list(_FROM.finditer(text, 0, first.start))
        join = list(_TO.finditer(text, first.end, second.start))
        if not lead or not join:
            continue
        before = text[lead[-1].end() : first.start].strip().lower()
        after = text[join[-1].end() : second.start].strip().lower()
        gap = text[first.end : join[-1].start()].strip()
        if before in ("", "the") and after in ("", "the") and not gap:
            return first, second
    return None
