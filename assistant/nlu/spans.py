"""What entity extraction is written in: words, candidate spans and their ranks.

The gazetteer (``assistant.nlu.gazetteer``), the patterns
(``assistant.nlu.entity_patterns``) and the choice between them
(``assistant.nlu.entities``) all speak of folded tokens and candidate spans; this
module holds those few shared pieces, so each of the three can be read alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from catalog.names import fold

NAME_TYPES = ("track", "artist", "album")
TAG_TYPES = ("genre", "mood", "instrument")
TOKEN = re.compile(r"\w+(?:['’]\w+)*")
# source ranks: a pattern knows its context, an exact name beats a fuzzy one
PATTERN, EXACT, PARTIAL, FUZZY = 3, 2, 1, 0


def tokens(text: str) -> list[tuple[str, int, int]]:
    """(folded token, start, end) for each word of ``text``."""
    return [(fold(m.group()), m.start(), m.end()) for m in TOKEN.finditer(text)]


@dataclass
class Candidate:
    """A span that may be an entity, before the intent picks among the candidates."""

    entity: str
    value: str
    start: int
    end: int
    confidence: float
    source: int
    extractor: str
    from_lookup: bool = True


#: Words that end (or cannot start) a name said in passing ("by Taylor Swift from the 80s").
NAME_STOP = set(
    "a an the my our your his her their this that these those some any all of for and or to "
    "in on from with by at as please pls now again instead only just then too also tonight "
    "today is are was were be does do did have has had how many much what which who whose "
    "song songs track tracks music tune tunes piece pieces stuff something anything album "
    "albums playlist record soundtrack there here me i it".split()
)


__all__ = [
    "EXACT",
    "FUZZY",
    "NAME_STOP",
    "NAME_TYPES",
    "PARTIAL",
    "PATTERN",
    "TAG_TYPES",
    "TOKEN",
    "Candidate",
    "tokens",
]
