"""The filters a question sets: tempo, years, length, key, a content label, and the
artist, album, composer or tag it names after "by", "on", "from".

"How many tracks by Radiohead over 120 bpm from the 80s?" narrows an aggregate in
several ways; reading those narrowings is one job, apart from deciding what kind of
question it is (``assistant.qa.questions``), so each can be read alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.qa.resolve import Gazetteer
from assistant.qa.wording import (
    BPM,
    BPM_RANGE,
    CONTENT_LABELS,
    DECADE,
    LABEL_WORDS,
    MINUTES,
    VOCABULARY,
    YEAR,
)
from catalog.filters import SearchFilters
from catalog.keys import find_key, tonic_of
from catalog.names import fold

if TYPE_CHECKING:
    from assistant.qa.questions import Question

SCORE_WORDS = re.compile(r"\bscore\b|\bsheet music\b|\bnotation\b|\bon paper\b")


@dataclass
class Filters(SearchFilters):
    """The catalog's filters plus a content label only QA's content model can judge."""

    label: str | None = None  # a content label the tracks must have ("piano", "ambient")
    label_family: str | None = None

    def empty(self) -> bool:
        return not self.narrows()

    def describe(self) -> str:
        text = super().describe() if super().narrows() else ""
        if self.label:
            words = "with" if self.label_family == "instrument" else "that sound"
            text = f"{text} {words} {self.label}".strip()
        return text


def find_labels(norm: str) -> list[tuple[str, str]]:
    """Every content label named in the normalised text, in order: [(family, label)]."""
    found: list[tuple[int, str, str]] = []
    padded = f" {norm} "
    for family, labels in CONTENT_LABELS.items():
        for label, words in labels.items():
            idx = min((i for w in words if (i := padded.find(f" {w} ")) >= 0), default=-1)
            if idx >= 0:
                found.append((idx, family, label))
    return [(fam, lab) for _, fam, lab in sorted(found)]


def find_label(norm: str) -> tuple[str, str] | None:
    """The first content label named in the normalised text: (family, label)."""
    best: tuple[int, str, str] | None = None
    padded = f" {norm} "
    for family, labels in CONTENT_LABELS.items():
        for label, words in labels.items():
            for w in words:
                idx = padded.find(f" {w} ")
                if idx >= 0 and (best is None or idx < best[0]):
                    best = (idx, family, label)
    return (best[1], best[2]) if best else None


def key_filters(rest: str) -> dict:
    """The key or mode a question names ("in D minor", "minor key tracks")."""
    found: dict = {}
    m = find_key(rest)
    if m and not re.search(r"\b(is|are) (it|they)\b", rest):
        found["key"] = tonic_of(m)
        found["mode"] = m.group(3)
    elif re.search(r"\bminor\b", rest) and not re.search(r"\bmajor\b", rest):
        found["mode"] = "minor"
    elif re.search(r"\bmajor\b", rest) and not re.search(r"\bminor\b", rest):
        found["mode"] = "major"
    return found


def aggregate_filters(q: Question, rest: str, gaz: Gazetteer) -> None:
    """Set ``q.filters`` from the narrowings ``rest`` names (and the names found in it)."""
    f = q.filters
    _named_filters(q, rest, gaz)
    f.artist, f.album, f.composer = q.artist, q.album, q.composer
    if m := BPM_RANGE.search(rest):
        f.tempo_min, f.tempo_max = sorted((float(m.group(1)), float(m.group(2))))
    elif m := BPM.search(rest):
        bpm = float(m.group(1))
        before = rest[: m.start()]
        if re.search(r"\b(over|above|more than|faster than|at least|greater than)\s*$", before):
            f.tempo_min = bpm
        elif re.search(r"\b(under|below|less than|slower than|at most)\s*$", before):
            f.tempo_max = bpm
        else:  # "around", "about", "near", or just "120 bpm": within 5 %
            f.tempo_min, f.tempo_max = bpm * 0.95, bpm * 1.05
    if (m := YEAR.search(rest)) and not BPM.search(rest):
        f.year_min = f.year_max = int(m.group(1))
    elif m := DECADE.search(rest):
        century = m.group(1) or ("20" if int(m.group(2)) <= 2 else "19")
        f.year_min = int(f"{century}{m.group(2)}0")
        f.year_max = f.year_min + 9
    label = find_label(rest)
    if label is not None:
        f.label_family, f.label = label
    if m := MINUTES.search(rest):
        secs = float(m.group(1)) * (60 if m.group(2).startswith("min") else 1)
        before = rest[: m.start()]
        if re.search(r"\b(over|longer than|more than|at least)\s*$", before):
            f.duration_min = secs
        elif re.search(r"\b(under|shorter than|less than|at most)\s*$", before):
            f.duration_max = secs
    if SCORE_WORDS.search(rest) or re.search(r"\b(scores|rendered|symbolic)\b", rest):
        f.scores_only = True


#: Where a question names an artist, composer, album or tag, and which field each means.
_NAME_MARKERS = re.compile(
    r"\b(?P<marker>(?:composed|written) by|by|album(?: called| named| titled)?|on|from"
    r"|tagged(?: as)?|genre|tag)\s+(?:the )?(?=(?P<name>.+))"
)
_MARKER_FIELDS = {
    "by": ("artist", "composer"),
    "composed by": ("composer", "artist"),
    "written by": ("composer", "artist"),
    "album": ("album",),
    "on": ("album",),
    "from": ("artist", "album"),
    "tagged": ("tag",),
    "genre": ("tag",),
    "tag": ("tag",),
}
#: "how many reggae tracks?": a word standing before "tracks" restricts them.
_TAG_BEFORE = re.compile(
    r"\b(?:how many|which|what|any|list|show me|find|count)\s+(?P<name>\w+)"
    r"\s+(?:tracks?|songs?|pieces?|music)\b"
)
#: Words that end (or are) no name: question words, units, places in the library.
_NOT_NAME = frozenset(
    """a an the is are was were what which who whom how why when where does do did of in on by
    for to it its this that these those and or me my your our i you we there any all every
    each some no not many much more less most least other same than with without over under
    above below around about near between at before after since released recorded made
    tracks track songs song pieces piece music tune tunes ones one album albums artist artists
    library collection catalog catalogue playlist list record records soundtrack scores score
    year years length tempo bpm key mode time order sorted ordered name names title whom fast
    slow long short loud quiet new old good analysed unanalysed together total combined
    altogether last lasting play played playing have has had be been can could would should
    tagged tag tags genre genres mood moods instrument instruments sheet paper notation
    rendered symbolic minutes seconds mins secs please now then do""".split()
)


def _named_filters(q: Question, rest: str, gaz: Gazetteer) -> None:
    """Resolve the names in "by X", "on the album X", "X tracks" that the spotter missed.

    A name the library lacks goes to ``q.unknown_filters``; dropping it silently would
    turn "how many tracks by Radiohead?" into a count of the whole library.
    """
    found: list[tuple[tuple[str, ...], str]] = []
    for m in _NAME_MARKERS.finditer(rest):
        name = _name_words(m.group("name"))
        marker = m.group("marker")
        if marker.startswith(("album", "tagged")):
            marker = marker.split()[0]
        if name:
            found.append((_MARKER_FIELDS[marker], name))
    for m in _TAG_BEFORE.finditer(rest):
        word = m.group("name")
        if _name_words(word) == word and find_label(word) is None:
            found.append((("tag",), word))
    for fields, name in found:
        if any(fold(n) == name for _, n in q.unknown_filters):
            continue
        if fields == ("tag",):
            if find_label(name) is None:
                q.unknown_filters.append(("genre or tag", _original_case(q.text, name)))
            continue
        for fld in fields:
            res = gaz.resolve(name, fld)
            if res.found:
                if fld == "artist" and q.artist is None:
                    q.artist = res.name
                elif fld == "composer" and q.composer is None:
                    q.composer = res.name
                elif fld == "album" and q.album is None:
                    q.album = res.name
                break
        else:
            # "by X" names an artist (a composer is tried too); "from X" either kind
            shown = " or ".join(fields) if "album" in fields else fields[0]
            q.unknown_filters.append((shown, _original_case(q.text, name)))


def _name_words(text: str) -> str:
    """The leading words of ``text`` that can be a name (at most four)."""
    words: list[str] = []
    for w in text.split():
        if w in _NOT_NAME or w in VOCABULARY or w in LABEL_WORDS or any(c.isdigit() for c in w):
            break
        words.append(w)
    return " ".join(words[:4])


def _original_case(text: str, name: str) -> str:
    """``name`` as the person typed it ("Radiohead", not "radiohead")."""
    pattern = r"\W+".join(re.escape(w) for w in name.split())
    m = re.search(rf"\b{pattern}\b", text, re.IGNORECASE)
    return m.group(0) if m else name


__all__ = [
    "SCORE_WORDS",
    "Filters",
    "aggregate_filters",
    "find_label",
    "find_labels",
    "key_filters",
]
