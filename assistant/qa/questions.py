"""What a question asks: its type, the attribute, the names and filters in it.

The NLU gives an intent and entities; this module reads the wording itself for
the finer distinctions QA needs ("which is faster", "highest note", "around 120
bpm") and, when no NLU is available, does the whole job from the text alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.qa.concepts import Concept, Glossary
from assistant.qa.question_filters import (
    SCORE_WORDS,
    Filters,
    aggregate_filters,
    find_label,
    find_labels,
    key_filters,
)
from assistant.qa.resolve import Gazetteer, Mention
from assistant.qa.wording import (
    AVERAGE,
    COMPARATIVES,
    CONCEPT,
    CONCEPT_ANY,
    CONTENT_LABELS,
    COUNT,
    DIFFERENCE,
    LIST,
    NOT_A_TERM,
    PATTERNS,
    SAME,
    STATS,
    SUPERLATIVES,
    TOP_ARTIST,
    TOTAL,
    VOCABULARY,
    correct_typos,
)
from catalog.keys import find_key
from catalog.names import fold

QUESTION_TYPES = ("facts", "audio", "content", "aggregate", "compare", "score", "concept")

#: The dialogue intents QA answers and the question types each may lead to.
INTENT_TYPES: dict[str, tuple[str, ...]] = {
    "ask_track_info": ("facts", "audio", "score", "content", "aggregate", "compare"),
    "ask_content": ("content", "score", "audio", "aggregate"),
    "ask_stats": ("aggregate", "facts", "audio", "compare"),
    "ask_concept": ("concept",),
    "describe_track": ("content", "facts"),
    "compare_tracks": ("compare",),
}
#: The dialogue intents the QA engine answers (the actions route these to it).
QA_INTENTS = tuple(INTENT_TYPES)


@dataclass
class Question:
    """A question's meaning, independent of where it came from (NLU or text alone)."""

    text: str
    qtype: str | None = None
    attribute: str | None = None
    tracks: list[Mention] = field(default_factory=list)  # named tracks, in order
    artist: str | None = None
    album: str | None = None
    composer: str | None = None
    unknown_names: list[str] = field(default_factory=list)
    #: (field, name) filters that match nothing in the library ("tracks by Radiohead"):
    #: an aggregate over them must say so, never count the whole library instead
    unknown_filters: list[tuple[str, str]] = field(default_factory=list)
    label: str | None = None  # content label ("piano", "sad")
    label_family: str | None = None  # instrument / vocals / mood / genre
    polar: bool = False  # a yes/no question ("is there piano in X?")
    choices: list[str] = field(default_factory=list)  # "happy or sad?": pick one
    direction: str | None = None  # max / min for superlatives and comparisons
    filters: Filters = field(default_factory=Filters)
    concept: Concept | None = None
    concepts: list[Concept] = field(default_factory=list)  # "difference between X and Y"
    unknown_concept: bool = False  # "what is a theremin?" with no glossary entry
    concept_phrase: str | None = None
    follow_up: bool = False  # no name given: about the current track


_POLAR = re.compile(r"^(is|are|does|do|did|has|have|was|were|can|could|would|any)\b")
_FOLLOW = re.compile(r"^(and|what about|how about|also|ok and|so)\b|\b(it|its|it's|this|that)\b")
_FOLLOW_ONLY = re.compile(
    r"^(and|and what about|what about|how about|and for|same for|same question for|now|ok|"
    r"okay|so|and the|then)?( the same for| for)?\s*$"
)


def analyse(
    text: str,
    gazetteer: Gazetteer,
    glossary: Glossary,
    allowed: tuple[str, ...] | None = None,
    names: dict[str, list[str]] | None = None,
) -> Question:
    """Read ``text`` into a Question. ``names`` are entity values from the NLU, if any."""
    q = Question(text=text)
    norm = fold(text)
    mentions = _take_names(q, gazetteer.spot(text), names or {}, gazetteer)
    # strip named spans before looking for attribute words, so that a title such as
    # "March Thee to Dis" or "Sad" does not read as a question about marches or moods
    rest = correct_typos(_without_spans(norm, mentions))
    for k, v in key_filters(rest).items():
        setattr(q.filters, k, v)

    concept = _concept(norm, rest, q, glossary)
    # Every QA intent comes here, so the wording decides between them: a concept question
    # stays one even when the NLU called it ask_track_info. The intent only fills in what
    # the wording leaves open (see _fallback_for).
    if concept is not None:
        q.qtype, q.attribute, q.concept = "concept", "definition", concept
        return q

    if q.unknown_concept:
        return q  # answered as "not in my glossary"
    qtype, attribute = _classify(q, rest, norm, gazetteer)
    if allowed is not None and qtype is None:
        fallback = _fallback_for(allowed, q, rest)
        if fallback is not None:
            qtype, attribute = fallback
    q.qtype, q.attribute = qtype, attribute
    if not q.tracks and not q.unknown_names and qtype in ("facts", "audio", "content", "score"):
        q.follow_up = True
    return q


def _take_names(
    q: Question, mentions: list[Mention], names: dict[str, list[str]], gaz: Gazetteer
) -> list[Mention]:
    """Fill the question's names; return the mentions used (their words are not attributes)."""
    strong = [m for m in mentions if m.score >= 80]
    weak = [m for m in mentions if m.score < 80]
    for field_name in ("track", "artist", "album", "composer"):
        for value in names.get(field_name, []):
            res = gaz.resolve(value, field_name)
            if res.found:
                if not any(m.field == field_name and m.name == res.name for m in strong):
                    strong.append(Mention(field_name, res.name or value, -1, -1, 100.0))
            elif not any(m.field == field_name for m in strong):
                q.unknown_names.append(value)
                if field_name != "track":
                    q.unknown_filters.append((field_name, value))
    # a title found from a word that belongs to a named album or artist ("Return to
    # Wesnoth" from "the Wesnoth soundtrack") is no title the question names
    named = {w for m in strong if m.field != "track" for w in fold(m.name).split()}
    norm = fold(q.text)
    strong = [m for m in strong if not _part_of_named(m, norm, named)]
    weak = [m for m in weak if not _part_of_named(m, norm, named)]
    tracks = [m for m in strong if m.field == "track"]
    if not tracks and weak:
        pronoun = re.search(r"\b(it|its|this|that)\b", norm)
        label_words = {w for fam in CONTENT_LABELS.values() for ws in fam.values() for w in ws}
        tracks = [
            m
            for m in weak
            if m.field == "track"
            and not pronoun
            and fold(m.name) not in label_words
            and fold(m.name) not in VOCABULARY
        ][:1]
    q.tracks = tracks
    artist_spans = {(m.start, m.end) for m in strong if m.field == "artist" and m.start >= 0}
    asks_composer = bool(PATTERNS["composer"].search(fold(q.text)))
    for m in strong:
        if m.field == "composer" and (m.start, m.end) in artist_spans and not asks_composer:
            continue  # a name that is both artist and composer: "by X" means the artist
        if m.field == "artist" and q.artist is None:
            q.artist = m.name
        elif m.field == "album" and q.album is None:
            q.album = m.name
        elif m.field == "composer" and q.composer is None:
            q.composer = m.name
    return strong + [m for m in tracks if m not in strong]


def _part_of_named(m: Mention, norm: str, named: set[str]) -> bool:
    if m.field != "track" or m.start < 0 or not named:
        return False
    surface = norm[m.start : m.end]
    return surface != fold(m.name) and set(surface.split()) <= named


def _without_spans(norm: str, mentions: list[Mention]) -> str:
    out = norm
    spans = sorted({(m.start, m.end) for m in mentions if m.start >= 0}, reverse=True)
    for start, end in spans:
        out = out[:start] + " " + out[end:]
    return " ".join(out.split())


def _concept(norm: str, rest: str, q: Question, glossary: Glossary) -> Concept | None:
    pair = DIFFERENCE.search(norm)
    if pair and not q.tracks:
        a, b = glossary.lookup(pair.group(1)), glossary.lookup(pair.group(2))
        if a is None and pair.group(1) in ("major", "minor"):
            a = glossary.lookup(pair.group(1) + " key")
        if b is None and pair.group(2) in ("major", "minor"):
            b = glossary.lookup(pair.group(2) + " key")
        if a is not None and b is not None and a != b:
            q.concepts = [a, b]
            return a
    m = CONCEPT.match(norm)
    phrase = None
    if m:
        phrase = m.group(2).strip()
        if m.group(1) == "the " and _has_attribute_words(phrase):
            return None  # "what's the bpm?" asks for the current track's tempo
        phrase = re.sub(r"^(a|an|the)\s+", "", phrase)
        phrase = re.sub(r"\s+(in music|in music theory|mean|means|exactly|again)$", "", phrase)
    found = glossary.lookup(phrase) if phrase else None
    # "what is Nebula?" names a track, not a concept
    if found is not None and q.tracks and fold(q.tracks[0].name) == phrase:
        return None
    if found is None and CONCEPT_ANY.search(norm) and not q.tracks:
        found = glossary.spot(rest)
    if found is None and phrase and not q.tracks and not q.artist and not q.album:
        q.concept_phrase = phrase
        words = set(phrase.split())
        plain = not (words & (VOCABULARY | NOT_A_TERM)) and not _has_attribute_words(phrase)
        if m and len(words) <= 3 and plain and (m.group(1) in ("a ", "an ") or len(words) <= 2):
            q.unknown_concept = True
    return found


def _has_attribute_words(rest: str) -> bool:
    return any(p.search(rest) for p in PATTERNS.values())


def _classify(q: Question, rest: str, norm: str, gaz: Gazetteer) -> tuple[str | None, str | None]:
    # comparisons: two tracks and a comparative, or "same key"
    same = SAME.search(rest)
    comparative = next((w for w in COMPARATIVES if re.search(rf"\b{w}\b", rest)), None)
    pairing = len(q.tracks) >= 2 or re.search(
        r"\b(or|than|vs|versus|these|those|them|both|the two)\b", rest
    )
    if pairing and (same or comparative):
        if same:
            attr = next(g for g in same.groups() if g)
            return "compare", "same_" + {"speed": "tempo", "length": "duration"}.get(attr, attr)
        attribute, q.direction = COMPARATIVES[comparative]
        return "compare", attribute

    if re.search(r"\b(compare|comparison|difference between|differ|vs|versus)\b", rest) and (
        len(q.tracks) >= 2 or re.search(r"\b(these|those|them|both|two)\b", rest)
    ):
        for attr in ("tempo", "duration", "loudness", "year"):
            if PATTERNS[attr].search(rest):
                q.direction = "max"
                return "compare", attr
        if PATTERNS["key"].search(rest):
            return "compare", "same_key"
        return "compare", "overview"

    if STATS.search(rest) and not q.tracks:
        return "aggregate", "stats"
    if TOP_ARTIST.search(rest):
        aggregate_filters(q, rest, gaz)
        return "aggregate", "top_artist"
    average = AVERAGE.search(rest)
    if average and not q.tracks:
        for attr in ("tempo", "duration", "loudness", "year"):
            if PATTERNS[attr].search(rest):
                aggregate_filters(q, rest, gaz)
                return "aggregate", "average_" + attr

    superlative = next((w for w in SUPERLATIVES if re.search(rf"\b{w}\b", rest)), None)
    if superlative and not re.search(r"\b(highest|lowest) (note|pitch)\b", rest):
        q.attribute, q.direction = SUPERLATIVES[superlative]
        aggregate_filters(q, rest, gaz)
        return "aggregate", "superlative_" + q.attribute

    if TOTAL.search(rest) and (q.album or q.artist or q.composer or not q.tracks):
        aggregate_filters(q, rest, gaz)
        return "aggregate", "total_duration"

    if COUNT.search(rest) and not PATTERNS["measures"].search(rest) and not q.tracks:
        if re.search(r"\bartists\b|\bmusicians\b|\bperformers\b", rest):
            return "aggregate", "count_artists"
        if re.search(r"\balbums\b", rest):
            aggregate_filters(q, rest, gaz)
            return "aggregate", "count_albums"
        aggregate_filters(q, rest, gaz)
        return "aggregate", "count"

    if not q.tracks and q.album and PATTERNS["album_tracks"].search(rest):
        return "facts", "album_tracks"
    if not q.tracks and q.album and PATTERNS["duration"].search(rest):
        return "aggregate", "total_duration"

    listing = LIST.search(rest) or re.match(r"(tracks?|songs?|pieces?)\b", rest)
    if not q.tracks and listing and not re.search(r"\b(this|that|it) ?(one|track|song)?\b", rest):
        aggregate_filters(q, rest, gaz)
        if q.unknown_filters or (
            not q.filters.empty() and not (q.tracks and not q.filters.tempo_min)
        ):
            return "aggregate", "list"

    return _track_attribute(q, rest, norm, gaz)


def _track_attribute(
    q: Question, rest: str, norm: str, gaz: Gazetteer
) -> tuple[str | None, str | None]:
    is_score = False
    if q.tracks:
        ids = gaz.tracks["track"].get(fold(q.tracks[0].name), [])
        is_score = any(gaz.snapshot.tracks[i].score_ref for i in ids)
    score_words = bool(SCORE_WORDS.search(rest))
    for attr in ("time_signature", "measures", "highest_note", "lowest_note"):
        if PATTERNS[attr].search(rest):
            return "score", attr
    label = find_label(rest)
    score_parts = re.search(
        r"\binstrumentation\b|\bscored for\b|\b(parts|voices)\b|\bwritten for\b", rest
    )
    if PATTERNS["instrumentation"].search(rest) and (score_words or (is_score and score_parts)):
        if label is None or not _POLAR.match(rest):
            return "score", "instrumentation"
    if PATTERNS["composer"].search(rest):
        return "facts", "composer"
    if PATTERNS["album_tracks"].search(rest) and q.album and not q.tracks:
        return "facts", "album_tracks"
    if PATTERNS["licence"].search(rest):
        return "facts", "licence"
    if PATTERNS["mode"].search(rest) and not find_key(rest):
        return ("score" if score_words else "audio"), "mode"
    if PATTERNS["key"].search(rest):
        return ("score" if score_words else "audio"), "key"
    for attr, qtype in (("tempo", "audio"), ("duration", "facts"), ("year", "facts")):
        if PATTERNS[attr].search(rest):
            return qtype, attr
    if PATTERNS["title"].search(rest):
        return "facts", "title"
    if PATTERNS["album"].search(rest) and (q.tracks or not q.album):
        return "facts", "album"
    if PATTERNS["artist"].search(rest):
        return "facts", "artist"
    if PATTERNS["loudness"].search(rest):
        return "audio", "loudness"
    if label is not None:
        q.label_family, q.label = label
        q.polar = bool(_POLAR.match(rest)) or bool(re.search(r"\b(there|any)\b", rest))
        labels = [lab for fam, lab in find_labels(rest) if fam == q.label_family]
        if len(labels) >= 2 and re.search(r"\bor\b", rest):
            q.choices = labels[:2]  # "is it happy or sad?"
        return "content", q.label_family
    for words, family in (("instrumentation", "instrument"), ("genre", "genre"), ("mood", "mood")):
        if PATTERNS[words].search(rest):
            return "content", family
    if q.tracks and _FOLLOW_ONLY.match(rest):
        return None, None  # "what about X?": the last question's attribute applies
    if PATTERNS["describe"].search(rest) or (q.tracks and len(rest.split()) <= 3):
        return "content", "describe"
    if q.tracks or q.follow_up or _FOLLOW.search(rest):
        return None, None  # a follow-up that only names a track: the last attribute applies
    return None, None


def _fallback_for(allowed: tuple[str, ...], q: Question, rest: str) -> tuple[str, str] | None:
    first = allowed[0]
    if first == "compare" and len(q.tracks) >= 2:
        return "compare", "same_key" if "key" in rest else "tempo"
    if first == "content":
        return "content", "describe"
    return None
