"""Entity extraction: a gazetteer of names, fuzzy matching, and patterns.

Names come from the catalog (artists, titles, albums, tags, playlists) and from
nlu.yml (lookup tables, annotated values, synonyms), so a new library needs no
retraining. Exact matches are found over normalised tokens (case and accents
folded), typos by rapidfuzz, numbers / years / decades / ordinals / playlist
names by patterns. Overlaps are settled by length, then source, then confidence.
Some entity types only make sense for some intents ("louder" is a volume
command in playback_control but a search direction in refine), so extraction
takes the intent when it is known.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

from assistant.nlu.rasa_format import NLUData
from assistant.turn import Entity
from catalog.names import fold

#: Intents whose turns carry no entities worth acting on.
NO_ENTITY_INTENTS = {"greet", "goodbye", "thank", "help", "affirm", "deny", "out_of_scope"}
#: Entity types that only count under some intents (others: everywhere).
INTENT_GATES = {
    "control": {"playback_control"},
    "direction": {"refine"},
    "attribute": {
        "ask_track_info",
        "ask_content",
        "ask_stats",
        "ask_concept",
        "describe_track",
        "compare_tracks",
        "search_music",
        "recommend",
        "refine",
        "select_item",
    },
}
#: A playlist named without the word "playlist" only counts for these intents.
PLAYLIST_INTENTS = {
    "playlist_add", "playlist_create", "playlist_delete", "playlist_export", "play_music"
}  # fmt: skip
NAME_TYPES = ("track", "artist", "album")
TAG_TYPES = ("genre", "mood", "instrument")

_TOKEN = re.compile(r"\w+(?:['’]\w+)*")
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
# Words too common to stand alone for a title that merely contains them.
_COMMON = set(
    "music song songs track tracks theme symphony soundtrack original advanced unknown "
    "product legends northern mountains shadows chains journey return path city king dead "
    "love main space land battle epic sound something another still over into through "
    "march music enemy media threat research endgame singularity wesnoth fade chimes".split()
)
_PLAYLIST_STOP = set(
    "a an the my our this that these those to in into on onto from of for with and or "
    "please new delete remove create make add put save called named list playlist it "
    "me us some all current song track out as results anymore destroy erase trash kill wipe "
    "drop clear build start set get rid throw away up again now".split()
)
_FUZZY_EDGE_STOP = _PLAYLIST_STOP | set(
    "is are was by or and vs versus than like on at about play plays does do did what which "
    "who how whats what's tell describe find search".split()
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
#: Longer texts are only searched in their first MAX_TEXT_CHARS characters.
MAX_TEXT_CHARS = 1000
MAX_NAME_CHARS = 80
# source ranks: a pattern knows its context, an exact name beats a fuzzy one
PATTERN, EXACT, PARTIAL, FUZZY = 3, 2, 1, 0


def tokens(text: str) -> list[tuple[str, int, int]]:
    """(folded token, start, end) for each word of ``text``."""
    return [(fold(m.group()), m.start(), m.end()) for m in _TOKEN.finditer(text)]


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


@dataclass(frozen=True)
class Reading:
    entity: str
    value: str
    source: int  # EXACT / PARTIAL (rank)
    from_lookup: bool = True  # False: known only as a synonym surface


@dataclass
class Candidate:
    entity: str
    value: str
    start: int
    end: int
    confidence: float
    source: int
    extractor: str
    from_lookup: bool = True


@dataclass
class Vocabulary:
    """Names by entity type; built from nlu.yml and the catalog."""

    names: dict[str, set[str]] = field(default_factory=dict)
    synonyms: dict[str, str] = field(default_factory=dict)  # folded surface -> value
    synonym_types: dict[str, str] = field(default_factory=dict)  # folded surface -> entity
    regexes: dict[str, list[str]] = field(default_factory=dict)

    def add(self, entity: str, values: Iterable[str]) -> None:
        bucket = self.names.setdefault(entity, set())
        bucket.update(v.strip() for v in values if v and v.strip())

    @classmethod
    def from_nlu(cls, data: NLUData) -> Vocabulary:
        vocab = cls(regexes={k: list(v) for k, v in data.regexes.items()})
        for entity, values in data.lookups.items():
            vocab.add(entity, values)
        value_types: dict[str, str] = {}
        for entity, values in data.lookups.items():
            for v in values:
                value_types.setdefault(v, entity)
        for ex in data.examples:
            for ent in ex.entities:
                if ent.entity in ("number", "decade"):
                    continue  # patterns find these
                surface = ex.text[ent.start : ent.end]
                value_types.setdefault(ent.value, ent.entity)
                if ent.value == surface:
                    # names come from lookups and the catalog (canonical spellings);
                    # annotated surfaces may be typos ("knols") that fuzzy matching covers
                    if ent.entity not in NAME_TYPES:
                        vocab.add(ent.entity, [surface])
                else:
                    vocab.synonym_types.setdefault(fold(surface), ent.entity)
        for surface, value in data.synonyms.items():
            vocab.synonyms[fold(surface)] = value
            if fold(surface) not in vocab.synonym_types and value in value_types:
                vocab.synonym_types[fold(surface)] = value_types[value]
        return vocab


def catalog_vocabulary(catalog) -> dict[str, set[str]]:
    """Artist, track, album, tag and playlist names currently in the catalog."""
    from sqlalchemy import select

    from catalog.models import Album, Artist, Playlist, Tag, Track

    out: dict[str, set[str]] = {t: set() for t in (*NAME_TYPES, *TAG_TYPES, "playlist")}
    with catalog.session() as s:
        out["artist"].update(s.scalars(select(Artist.name)))
        out["track"].update(s.scalars(select(Track.title)))
        out["album"].update(s.scalars(select(Album.title)))
        out["playlist"].update(s.scalars(select(Playlist.name)))
        for name, kind in s.execute(select(Tag.name, Tag.kind).distinct()):
            if kind in TAG_TYPES:
                out[kind].add(name)
    return out


class EntityExtractor:
    """Finds entity spans in an utterance; see the module docstring for the rules."""

    max_window = 8

    def __init__(self, vocab: Vocabulary) -> None:
        self.vocab = vocab
        self._index: dict[tuple[str, ...], list[Reading]] = {}
        self._fuzzy: dict[str, list[Reading]] = {}
        self._names: dict[tuple[str, str], str] = {}  # (entity, folded) -> canonical
        self._build()

    def _put(self, key: tuple[str, ...], reading: Reading) -> None:
        bucket = self._index.setdefault(key, [])
        if reading not in bucket:
            bucket.append(reading)

    def _build(self) -> None:
        partial_owners: dict[str, set[tuple[str, str]]] = {}
        for entity, values in self.vocab.names.items():
            for value in values:
                toks = tuple(t for t, _, _ in tokens(value))
                if not toks:
                    continue
                self._put(toks, Reading(entity, value, EXACT))
                if toks[0] == "the" and len(toks) > 1:
                    self._put(toks[1:], Reading(entity, value, EXACT))
                joined = " ".join(toks)
                if entity in (*NAME_TYPES, *TAG_TYPES) and len(joined) >= 5:
                    self._fuzzy.setdefault(joined, []).append(Reading(entity, value, FUZZY))
                if entity in NAME_TYPES and len(toks) > 1:
                    for tok in set(toks):
                        if len(tok) >= 5 and tok not in _COMMON:
                            partial_owners.setdefault(tok, set()).add((entity, value))
                if entity in NAME_TYPES and len(toks) > 1 and entity == "artist":
                    last = toks[-1]  # "Pinkham" names Timothy Pinkham
                    if len(last) >= 4 and last not in _COMMON:
                        partial_owners.setdefault(last, set()).add((entity, value))
        tag_words = {
            t for e in TAG_TYPES for v in self.vocab.names.get(e, ()) for t, _, _ in tokens(v)
        }
        self._tag_words = tag_words
        for key, owners in _name_runs(self.vocab.names, tag_words).items():
            if len(owners) == 1 and key not in self._index:
                entity, value = next(iter(owners))
                self._put(key, Reading(entity, value, PARTIAL))  # "Battle for Wesnoth"
        for tok, owners in partial_owners.items():
            if len(owners) > 2 or tok in tag_words or (tok,) in self._index:
                continue
            for entity, value in owners:
                shown = value if len(owners) == 1 else tok
                self._put((tok,), Reading(entity, shown, PARTIAL))
                if len(tok) >= 5:
                    self._fuzzy.setdefault(tok, []).append(Reading(entity, shown, FUZZY))
        for surface, value in self.vocab.synonyms.items():
            entity = self.vocab.synonym_types.get(surface)
            if entity is None:
                continue
            key = tuple(t for t, _, _ in tokens(surface))
            if key:
                self._put(key, Reading(entity, value, EXACT, from_lookup=False))
        self._fuzzy_keys = list(self._fuzzy)

    # ------------------------------------------------------------------ candidates
    def _gazetteer(self, text: str, toks: list[tuple[str, int, int]]) -> list[Candidate]:
        out: list[Candidate] = []
        covered = [False] * len(toks)
        n = len(toks)
        for i in range(n):
            for length in range(min(self.max_window, n - i), 0, -1):
                key = tuple(t for t, _, _ in toks[i : i + length])
                readings = self._index.get(key)
                if not readings:
                    continue
                start, end = toks[i][1], toks[i + length - 1][2]
                for r in readings:
                    stop = _extend_closing(text, end, r.value)
                    conf = 1.0 if r.source == EXACT else 0.9
                    out.append(
                        Candidate(r.entity, r.value, start, stop, conf, r.source, "gazetteer",
                                  r.from_lookup)
                    )  # fmt: skip
                for k in range(i, i + length):
                    covered[k] = True
        if self._fuzzy_keys:
            for i in range(min(n, 64)):
                for length in (3, 2, 1):
                    if i + length > n or any(covered[i : i + length]):
                        continue
                    window = " ".join(t for t, _, _ in toks[i : i + length])
                    if len(window) > MAX_NAME_CHARS:
                        continue
                    edges = (toks[i][0], toks[i + length - 1][0])
                    if len(window) < 5 or any(w in _FUZZY_EDGE_STOP for w in edges):
                        continue
                    hit = process.extractOne(
                        window, self._fuzzy_keys, scorer=fuzz.ratio, score_cutoff=86
                    )
                    if hit is None:
                        continue
                    start, end = toks[i][1], toks[i + length - 1][2]
                    for r in self._fuzzy[hit[0]]:
                        out.append(
                            Candidate(r.entity, r.value, start, end, hit[1] / 100 * 0.9,
                                      FUZZY, "fuzzy")
                        )  # fmt: skip
        return out

    def _patterns(self, text: str) -> list[Candidate]:
        out: list[Candidate] = []

        def add(entity: str, value: str, m: re.Match, group: int = 1, conf: float = 1.0):
            out.append(
                Candidate(entity, value, m.start(group), m.end(group), conf, PATTERN, "pattern")
            )

        for m in _DECADE.finditer(text):
            value = decade_value(m.group(0).lstrip("'"))
            if value:
                out.append(Candidate("decade", value, m.start(), m.end(), 1.0, PATTERN, "pattern"))
        for name, patterns in self.vocab.regexes.items():
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
                out.append(
                    Candidate("decade", _DECADE_WORDS[tok], start, end, 1.0, PATTERN, "pattern")
                )
        for m in _ONE.finditer(text):
            add("number", "1", m)
        for m in _LAST_ONE.finditer(text):
            add("number", "-1", m)
        for m in _HOW.finditer(text):
            add("attribute", _HOW_VALUES[m.group(1).lower()], m)
        out.extend(self._album_by_cue(text))
        out.extend(self._playlist_patterns(text))
        return out

    def _playlist_patterns(self, text: str) -> list[Candidate]:
        found: list[tuple[int, int]] = []
        called = list(_CALLED.finditer(text)) + list(SAVE_AS.finditer(text))
        for m in called:
            found.append(_trim(text, m.start(1), m.end(1)))
        if not called:
            known = {fold(v) for v in self.vocab.names.get("playlist", ())}
            for m in _BEFORE.finditer(text):
                start, end = _trim(text, m.start(1), m.end(1))
                words = list(_TOKEN.finditer(text, start, end))
                if len(words) > 1 and fold(text[start:end]) not in known:
                    start = words[-1].start()
                found.append((start, end))
            for m in _AFTER.finditer(text):
                found.append(_trim(text, m.start(1), m.end(1), from_left=True))
        out = []
        for start, end in found:
            if end > start:
                name = text[start:end]
                value = self.vocab.synonyms.get(fold(name), name)
                out.append(Candidate("playlist", value, start, end, 0.95, PATTERN, "pattern"))
        return out

    def _album_by_cue(self, text: str) -> list[Candidate]:
        """An album named in part before "album" / "soundtrack" / "OST" ("the Wesnoth
        soundtrack", "the Bach chorales for choir album"): the one album whose title has
        every content word of the longest such part."""
        albums = [(v, {t for t, _, _ in tokens(v)}) for v in self.vocab.names.get("album", ())]
        if not albums:
            return []
        out = []
        toks = tokens(text)
        for i, (word, _, cue_end) in enumerate(toks):
            if word not in _ALBUM_CUES:
                continue
            for first in range(max(0, i - 6), i):
                part = toks[first:i]
                while part and part[0][0] in _NAME_STOP:
                    part = part[1:]
                content = {t for t, _, _ in part} - _NAME_STOP
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

    def _unknown_artist(self, text: str, cands: list[Candidate]) -> list[Candidate]:
        """A name after "by" that the library and nlu.yml do not know ("by Taylor Swift"),
        so that the assistant can say there is nothing by them; performers described
        rather than named ("by a choir", "by voices alone") are not names."""
        out = []
        for m in _BY_NAME.finditer(text):
            words = []
            for w in _TOKEN.finditer(text, m.end()):
                word = fold(w.group())
                gap = text[(words[-1].end() if words else m.end()) : w.start()]
                if len(words) == 4 or (words and not re.fullmatch(r"\s+", gap)):
                    break
                if word in _NAME_STOP and not (word == "the" and not words):
                    break
                words.append(w)
            if not words or fold(words[0].group()) == "the" and len(words) == 1:
                continue
            start, end = words[0].start(), words[-1].end()
            folded = [fold(w.group()) for w in words]
            if any(w in _PERFORMER_WORDS or w in self._tag_words for w in folded):
                continue
            if any(c.start < end and start < c.end for c in cands):
                continue
            name = text[start:end]
            name = name.title() if name.islower() else name  # "the beatles" -> The Beatles
            out.append(Candidate("artist", name, start, end, 0.6, PATTERN, "pattern"))
        return out

    # ------------------------------------------------------------------ selection
    def candidates(self, text: str) -> list[Candidate]:
        """Every possible span before the intent is known (reused by ``select``)."""
        if not text or not text.strip():
            return []
        text = text[:MAX_TEXT_CHARS]  # spans stay valid offsets into the full text
        cands = self._gazetteer(text, tokens(text)) + self._patterns(text)
        cands += self._unknown_artist(text, cands)
        for c in cands:
            if c.entity in (*NAME_TYPES, *TAG_TYPES) and c.source != PATTERN:
                c.confidence += _case_bonus(text, c)
        return cands

    def select(self, text: str, cands: list[Candidate], intent: str | None) -> list[Entity]:
        """The non-overlapping winners among ``cands`` allowed for ``intent``, in text order."""
        if intent in NO_ENTITY_INTENTS:
            return []
        cands = [c for c in cands if _allowed(c, intent)]
        cands = [c for c in cands if not _inside_description(text, c, cands)]
        cands = sorted(
            cands,
            key=lambda c: (c.end - c.start, c.source, c.from_lookup, round(c.confidence, 3)),
            reverse=True,
        )
        taken: list[Candidate] = []
        for c in cands:
            if all(c.end <= t.start or c.start >= t.end for t in taken):
                taken.append(c)
        taken.sort(key=lambda c: c.start)
        out = []
        for c in taken:
            value = c.value
            surface = fold(text[c.start : c.end])
            if (
                c.entity not in ("number", "decade", "playlist")
                and c.source != PATTERN
                and self.vocab.synonym_types.get(surface) in (None, c.entity)
            ):
                value = self.vocab.synonyms.get(surface, value)
            out.append(
                Entity(c.entity, value, c.start, c.end, round(min(c.confidence, 1.0), 3),
                       c.extractor)
            )  # fmt: skip
        return out

    def extract(self, text: str, intent: str | None = None) -> list[Entity]:
        """Non-overlapping entities of ``text`` (longest, then surest source, win)."""
        if intent in NO_ENTITY_INTENTS:
            return []
        return self.select(text, self.candidates(text), intent)


def _allowed(c: Candidate, intent: str | None) -> bool:
    if intent is None:
        return True
    gate = INTENT_GATES.get(c.entity)
    if gate is not None and intent not in gate:
        return False
    if c.entity == "playlist" and c.source != PATTERN and intent not in PLAYLIST_INTENTS:
        return False
    return True


#: Words after which a name is said to be an album ("the Wesnoth soundtrack").
_ALBUM_CUES = {"album", "soundtrack", "ost", "record", "lp"}
#: Words that end (or cannot start) a name said in passing ("by Taylor Swift from the 80s").
_NAME_STOP = set(
    "a an the my our your his her their this that these those some any all of for and or to "
    "in on from with by at as please pls now again instead only just then too also tonight "
    "today is are was were be does do did have has had how many much what which who whose "
    "song songs track tracks music tune tunes piece pieces stuff something anything album "
    "albums playlist record soundtrack there here me i it".split()
)
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


def _name_runs(names: dict[str, set[str]], tag_words: set[str]) -> dict[tuple, set]:
    """Runs of 2-4 words inside a longer name ("battle for wesnoth" of "The Battle for
    Wesnoth OST"): each (entity, value) holding the run, for runs that start and end on
    content words, hold two of them, and are not only tag words."""
    runs: dict[tuple, set] = {}
    for entity in NAME_TYPES:
        for value in names.get(entity, ()):
            toks = tuple(t for t, _, _ in tokens(value))
            if not 3 <= len(toks) <= 12:
                continue
            for i in range(len(toks)):
                for n in (2, 3, 4):
                    run = toks[i : i + n]
                    if len(run) < n or run == toks or (run == toks[1:] and toks[0] == "the"):
                        continue
                    if run[0] in _NAME_STOP or run[-1] in _NAME_STOP:
                        continue
                    content = [t for t in run if t not in _NAME_STOP]
                    if len(content) < 2 or all(t in tag_words for t in content):
                        continue
                    runs.setdefault(run, set()).add((entity, value))
    return runs


#: What may stand between two words of one description ("calm, slow and quiet").
_MUSIC_NOUNS = set(
    "music songs tracks tunes pieces stuff theme themes beats sounds vibes jams numbers".split()
)
_DESCRIPTION_GAP = re.compile(r"[\s,/&+-]*(?:(?:and|or|with)\s+)?", re.I)


def _inside_description(text: str, c: Candidate, cands: list[Candidate]) -> bool:
    """Whether ``c`` is a lower-case title that only continues a description.

    In "epic orchestral battle music" the words "battle music" spell the track
    "Battle Music", but they are the tail of a description: a mood and a genre lead
    into them. A title (or a playlist name without the word "playlist") written in
    lower case right after a genre, mood or instrument word is read as part of that
    description, not as a name; written with capitals ("epic Battle Music") or led in
    by anything else ("play battle music", "is battle music epic?") it stays a name.
    """
    if c.entity not in ("track", "album", "playlist") or c.source == PATTERN:
        return False
    if text[c.start : c.start + 1].isupper():
        return False
    for d in cands:
        if d.entity in TAG_TYPES and d.end <= c.start and d.source != FUZZY:
            gap = _DESCRIPTION_GAP.match(text, d.end)
            if gap is not None and gap.end() == c.start:
                return True
    # ... or right before a word for music ("triumphant victory music"), or before a tag
    # word joined by "with" / "and" ("a love theme with harp") or followed by a word for
    # music ("frantic electronic stuff"); not "is battle music epic?"
    if _music_noun_after(text, c.end):
        return True
    gap = _DESCRIPTION_GAP.match(text, c.end)
    joined = bool(text[gap.start() : gap.end()].strip(" "))
    return any(
        d.entity in TAG_TYPES
        and d.source != FUZZY
        and d.start == gap.end()
        and (joined or _music_noun_after(text, d.end))
        for d in cands
    )


def _music_noun_after(text: str, end: int) -> bool:
    """Whether the next word after ``end`` (past spaces) is a word for music."""
    follow = _TOKEN.match(text, end + len(text[end:]) - len(text[end:].lstrip()))
    return follow is not None and fold(follow.group()) in _MUSIC_NOUNS


def _case_bonus(text: str, c: Candidate) -> float:
    """Break ties between a title and a tag word: "Sad" is the track, "sad" the mood."""
    surface = text[c.start : c.end]
    capitalised = surface[:1].isupper() and c.start > 0
    if c.entity in NAME_TYPES:
        return 0.05 if capitalised else -0.2
    return 0.0 if capitalised else 0.05


def _extend_closing(text: str, end: int, value: str) -> int:
    """Include a name's trailing bracket or punctuation when the text has it too."""
    tail = re.search(r"[^\w\s]+$", value)
    if tail and text.startswith(tail.group(), end):
        return end + len(tail.group())
    return end


def _trim(text: str, start: int, end: int, from_left: bool = False) -> tuple[int, int]:
    """Drop stop words around a captured playlist name; (start, start) when none is left."""
    words = [(m.start() + start, m.end() + start) for m in _TOKEN.finditer(text[start:end])]
    if from_left:
        kept = []
        for ws, we in words:
            if fold(text[ws:we]) in _PLAYLIST_STOP:
                if kept:
                    break
                continue
            kept.append((ws, we))
        words = kept
    else:
        while words and fold(text[words[0][0] : words[0][1]]) in _PLAYLIST_STOP:
            words.pop(0)
        if any(fold(text[a:b]) in _PLAYLIST_STOP for a, b in words):
            return start, start
    if not words:
        return start, start
    return words[0][0], words[-1][1]
