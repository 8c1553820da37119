"""Name keys: the form of a name we compare when a person types it.

People type "beyonce", "ACDC", "dont stop" or "sigur ros" for "Beyoncé",
"AC/DC", "Don't Stop" and "Sigur Rós". ``fold`` turns a name to lower case
without accents, apostrophes, punctuation or repeated spaces, so such spellings
meet in one indexed column (``artists.name_key``, ``albums.title_key``,
``tracks.title_key``). It is THE fold: the catalog's keys, the NLU's gazetteer
and QA's name matching all use it, so a name found by one is found by all.
"""

from __future__ import annotations

import re
import unicodedata

#: Letters that Unicode does not decompose into a base letter plus an accent.
_LETTERS = str.maketrans(
    {
        "ø": "o",
        "Ø": "o",
        "æ": "ae",
        "Æ": "ae",
        "œ": "oe",
        "Œ": "oe",
        "ł": "l",
        "Ł": "l",
        "đ": "d",
        "Đ": "d",
        "ð": "d",
        "Ð": "d",
        "þ": "th",
        "Þ": "th",
        "ı": "i",
        "ß": "ss",
    }
)
#: Runs of characters that separate words. "#" is kept: it is part of "C# minor".
_NOT_WORD = re.compile(r"[^\w#]+|_+")
#: Apostrophes join the word they sit in: "don't" -> "dont", "Guns N' Roses" -> "guns n roses".
_APOSTROPHES = re.compile(r"['\u2019\u02bc`]")


def fold(name: str) -> str:
    """Lower case, accents, apostrophes and punctuation removed, words separated by one space."""
    text = unicodedata.normalize("NFKD", _APOSTROPHES.sub("", name).translate(_LETTERS))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    return _NOT_WORD.sub(" ", text).strip()


def name_key(name: str | None) -> str | None:
    """The stored search key of a name.

    A name made only of punctuation or symbols ("!!!", an emoji) would fold to
    nothing and collide with every other such name, so it keeps its own
    case-folded spelling instead.
    """
    if name is None:
        return None
    return fold(name) or " ".join(name.casefold().split())


def clean_name(name: str) -> str:
    """A name as stored: surrounding space removed, inner runs of space made one space.

    NUL characters are removed too: PostgreSQL cannot store them in text.
    """
    return " ".join(name.replace("\x00", "").split())
