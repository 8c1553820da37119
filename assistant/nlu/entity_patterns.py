"""Entities found by their shape and context, not by a list of names.

Numbers (digits, words, ordinals, "the last one"), years and decades ("the 80s",
"the nineties"), "how fast / long / loud", nlu.yml's regexes, playlist names
("called road trip", "save these as X", "the X playlist"), albums named in part before
a cue word ("the Wesnoth soundtrack") and an artist the library lacks ("by Taylor
Swift"). It exists apart from the gazetteer (``assistant.nlu.gazetteer``), which
knows the library's names; these patterns know only the language around them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from assistant.nlu.spans import NAME_STOP, PATTERN, TOKEN, Candidate, tokens
from catalog.names import fold

if TYPE_CHECKING:
    from assistant.nlu.gazetteer import Vocabulary

_WORD_NUMBERS = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
}  # fmt: skip
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6,
    "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10,
}  # fmt: skip
_DECADE_WORDS = {
    "twenties": "1920s", "thirties": "1930s", "forties": "1940s", "fifties": "1950s",
    "sixties": "1960s", "seventies": "1970s", "eighties": "1980s", "nineties": "1990s",
    "noughties": "2000s",
}  # fmt: skip
PLAYLIST_STOP = set(
    "a an the my our this that these those to in into on onto from of for with and or "
    "please new delete remove create make add put save called named list playlist it "
    "me us some all current song track out as results anymore destroy erase trash kill wipe "
    "drop clear build start set get rid throw away up again now".split()
)
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?!\.?\w)")
_ORDINAL_DIGITS = re.compile(r"\b(\d+)(?:st|nd|rd|th)\b", re.I)
_DECADE = re.compile(r"(?<!\w)'?((?:19|20)?\d0)'?s\b", re.I)
_HOW = re.compile(r"\bhow\s+(fast|quick|long|loud)\b", re.I)
_HOW_VALUES = {"fast": "tempo", "quick": "tempo", "long": "duration", "loud": "loudness"}
_ONE = re.compile(r"\b(?:number|option|select|choose|pick|track|song)\s+(one)\b", re.I)
_LAST_ONE = re.compile(r"\b(last)\s+one\b", re.I)
_CALLED = re.compile(
    r"\b(?:called|named)\s+[\"“']?([\w'’-]+(?:\s+[\w'’-]+){0,3}?)[\"”']?"
    r"(?=\s+(?:from|with|of|for|please|and|using|instead)\b|\s*[.!?,;]|\s*$)",
    re.I,
)
#: "save these as road trip": the list just shown, kept as a playlist of that name.
SAVE_AS = re.compile(
    r"\b(?:save|store|keep)\s+(?:this|these|them|it|that|those|the\s+(?:list|results|path|"
    r"songs|tracks))\s+(?:as|under)\s+(?:(?:a|the|my)\s+)?(?:playlist\s+)?(?:called\s+|named\s+)?"
    r"[\"“']?([\w'’-]+(?:\s+[\w'’-]+){0,3}?)[\"”']?(?=\s*[.!?,;]|\s*$|\s+(?:please|playlist)\b)",
    re.I,
)
_BEFORE = re.compile(r"((?:[\w'’-]+\s+)?[\w'’-]+)\s+(?:playlist|list)\b", re.I)
_AFTER = re.compile(r"\bplaylist\s+((?:[\w'’-]+\s*){1,4})", re.I)


def decade_value(surface: str) -> str | None:
    """'80s' -> '1980s', '2000s' -> '2000s', 'the nineties' -> '1990s'."""
    word = fold(surface).strip("'")
    if word in _DECADE_WORDS:
        return _DECADE_WORDS[word]
    m = re.fullmatch(r"((?:19|20)?)(\d)0'?s", word)
    if not m:
        return None
    if m.group(1):
        return f"{m.group(1)}{m.group(2)}0s"
    return f"20{m.group(2)}0s" if m.group(2) in "01" else f"19{m.group(2)}0s"


def find_patterns(text: str, vocab: Vocabulary) -> list[Candidate]:
    """Numbers, ordinals, decades, "how fast/long/loud", nlu.yml's regexes, albums named
    by a cue word and playlist names, found by their shape and context."""
    out: list[Candidate] = []

    def add(entity: str, value: str, m: re.Match, group: int = 1, conf: float = 1.0):
        out.append(Candidate(entity, value, m.start(group), m.end(group), conf, PATTERN, "pattern"))

    for m in _DECADE.finditer(text):
        value = decade_value(m.group(0).lstrip("'"))
        if value:
            out.append(Candidate("decade", value, m.start(), m.end(), 1.0, PATTERN, "pattern"))
    for name, patterns in vocab.regexes.items():
        for pattern in patterns:
            try:
                for m in re.finditer(pattern, text, re.I):
                    value = decade_value(m.group(0)) if name == "decade" else m.group(0)
                    if value and m.end() > m.start():
                        add(name, value, m, 0)
            except re.error:
                continue
    for m in _ORDINAL_DIGITS.finditer(text):
        add("number", m.group(1), m, 0)
    for m in _NUMBER.finditer(text):
        if len(m.group(1)) <= 9:
            add("number", m.group(1), m)
    for tok, start, end in tokens(text):
        value = _WORD_NUMBERS.get(tok) or _ORDINALS.get(tok)
        if value and not re.search(r"\b(?:these|those)\s+$", text[:start], re.I):
            out.append(Candidate("number", str(value), start, end, 1.0, PATTERN, "pattern"))
        if tok in _DECADE_WORDS:
            out.append(Candidate("decade", _DECADE_WORDS[tok], start, end, 1.0, PATTERN, "pattern"))
    for m in _ONE.finditer(text):
        add("number", "1", m)
    for m in _LAST_ONE.finditer(text):
        add("number", "-1", m)
    for m in _HOW.finditer(text):
        add("attribute", _HOW_VALUES[m.group(1).lower()], m)
    out.extend(_album_by_cue(text, vocab))
    out.extend(_playlist_patterns(text, vocab))
    return out


def _playlist_patterns(text: str, vocab: Vocabulary) -> list[Candidate]:
    found: list[tuple[int, int]] = []
    called = list(_CALLED.finditer(text)) + list(SAVE_AS.finditer(text))
    for m in called:
        found.append(_trim(text, m.start(1), m.end(1)))
    if not called:
        known = {fold(v) for v in vocab.names.get("playlist", ())}
        for m in _BEFORE.finditer(text):
            start, end = _trim(text, m.start(1), m.end(1))
            words = list(TOKEN.finditer(text, start, end))
            if len(words) > 1 and fold(text[start:end]) not in known:
                start = words[-1].start()
            found.append((start, end))
        for m in _AFTER.finditer(text):
            found.append(_trim(text, m.start(1), m.end(1), from_left=True))
    out = []
    for start, end in found:
        if end > start:
            name = text[start:end]
            value = vocab.synonyms.get(fold(name), name)
            out.append(Candidate("playlist", value, start, end, 0.95, PATTERN, "pattern"))
    return out


def _album_by_cue(text: str, vocab: Vocabulary) -> list[Candidate]:
    """An album named in part before "album" / "soundtrack" / "OST" ("the Wesnoth
    soundtrack", "the Bach chorales for choir album"): the one album whose title has
    every content word of the longest such part."""
    albums = [(v, {t for t, _, _ in tokens(v)}) for v in vocab.names.get("album", ())]
    if not albums:
        return []
    out = []
    toks = tokens(text)
    for i, (word, _, cue_end) in enumerate(toks):
        if word not in _ALBUM_CUES:
            continue
        for first in range(max(0, i - 6), i):
            part = toks[first:i]
            while part and part[0][0] in NAME_STOP:
                part = part[1:]
            content = {t for t, _, _ in part} - NAME_STOP
            if not content:
                continue
            owners = {v for v, words in albums if content <= words}
            if len(owners) == 1:
                value, start = owners.pop(), part[0][1]
                # "the X album": the name is X; "the X soundtrack": the cue names it too
                end = part[-1][2] if word in ("album", "record", "lp") else cue_end
                out.append(Candidate("album", value, start, end, 0.95, PATTERN, "pattern"))
                break
    return out


def unknown_artists(text: str, cands: list[Candidate], tag_words: set[str]) -> list[Candidate]:
    """A name after "by" that the library and nlu.yml do not know ("by Taylor Swift"),
    so that the assistant can say there is nothing by them; performers described
    rather than named ("by a choir", "by voices alone") are not names."""
    out = []
    for m in _BY_NAME.finditer(text):
        words = []
        for w in TOKEN.finditer(text, m.end()):
            word = fold(w.group())
            gap = text[(words[-1].end() if words else m.end()) : w.start()]
            if len(words) == 4 or (words and not re.fullmatch(r"\s+", gap)):
                break
            if word in NAME_STOP and not (word == "the" and not words):
                break
            words.append(w)
        if not words or fold(words[0].group()) == "the" and len(words) == 1:
            continue
        start, end = words[0].start(), words[-1].end()
        folded = [fold(w.group()) for w in words]
        if any(w in _PERFORMER_WORDS or w in tag_words for w in folded):
            continue
        if any(c.start < end and start < c.end for c in cands):
            continue
        name = text[start:end]
        name = name.title() if name.islower() else name  # "the beatles" -> The Beatles
        out.append(Candidate("artist", name, start, end, 0.6, PATTERN, "pattern"))
    return out


#: Words after which a name is said to be an album ("the Wesnoth soundtrack").
_ALBUM_CUES = {"album", "soundtrack", "ost", "record", "lp"}
#: Performers described rather than named ("sung by a choir", "played by voices alone").
_PERFORMER_WORDS = set(
    "choir choirs chorus voice voices vocal vocals vocalist vocalists singer singers orchestra "
    "orchestras band bands group groups quartet quartets trio duo quintet ensemble ensembles "
    "section sections soloist soloists solo children kids women men woman man people someone "
    "somebody anyone anybody artist artists composer composers musician musicians player "
    "players tempo bpm year years date length duration popularity name title genre mood key "
    "loudness default far hand ear heart itself myself yourself him them us one ones".split()
)
_BY_NAME = re.compile(r"\bby\b", re.I)


def _trim(text: str, start: int, end: int, from_left: bool = False) -> tuple[int, int]:
    """Drop stop words around a captured playlist name; (start, start) when none is left."""
    words = [(m.start() + start, m.end() + start) for m in TOKEN.finditer(text[start:end])]
    if from_left:
        kept = []
        for ws, we in words:
            if fold(text[ws:we]) in PLAYLIST_STOP:
                if kept:
                    break
                continue
            kept.append((ws, we))
        words = kept
    else:
        while words and fold(text[words[0][0] : words[0][1]]) in PLAYLIST_STOP:
            words.pop(0)
        if any(fold(text[a:b]) in PLAYLIST_STOP for a, b in words):
            return start, start
    if not words:
        return start, start
    return words[0][0], words[-1][1]


__all__ = ["PLAYLIST_STOP", "SAVE_AS", "decade_value", "find_patterns", "unknown_artists"]
