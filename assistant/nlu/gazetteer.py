"""The gazetteer: the names an utterance may mention, and finding them in it.

Names come from the catalog (artists, titles, albums, tags, playlists) and from
nlu.yml (lookup tables, annotated values, synonyms), so a new library needs no
retraining. Exact matches are found over normalised tokens (case and accents
folded), parts of long names ("Battle for Wesnoth") and last names alone, typos by
rapidfuzz. It exists apart from the patterns (``assistant.nlu.entity_patterns``) and
the choice between candidates (``assistant.nlu.entities``): it is the one part that
knows the library.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

from assistant.nlu.entity_patterns import PLAYLIST_STOP
from assistant.nlu.rasa_format import NLUData
from assistant.nlu.spans import (
    EXACT,
    FUZZY,
    NAME_STOP,
    NAME_TYPES,
    PARTIAL,
    TAG_TYPES,
    Candidate,
    tokens,
)
from catalog.names import fold

# Words too common to stand alone for a title that merely contains them.
_COMMON = set(
    "music song songs track tracks theme symphony soundtrack original advanced unknown "
    "product legends northern mountains shadows chains journey return path city king dead "
    "love main space land battle epic sound something another still over into through "
    "march music enemy media threat research endgame singularity wesnoth fade chimes".split()
)
_FUZZY_EDGE_STOP = PLAYLIST_STOP | set(
    "is are was by or and vs versus than like on at about play plays does do did what which "
    "who how whats what's tell describe find search".split()
)
MAX_NAME_CHARS = 80


@dataclass(frozen=True)
class Reading:
    entity: str
    value: str
    source: int  # EXACT / PARTIAL (rank)
    from_lookup: bool = True  # False: known only as a synonym surface


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


class Gazetteer:
    """The catalog's and nlu.yml's names, indexed for exact, partial and fuzzy lookup."""

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
        self.tag_words = tag_words
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

    def find(self, text: str, toks: list[tuple[str, int, int]]) -> list[Candidate]:
        """Every name (exact, in part, or misspelt) among the ``toks`` of ``text``."""
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
                    if run[0] in NAME_STOP or run[-1] in NAME_STOP:
                        continue
                    content = [t for t in run if t not in NAME_STOP]
                    if len(content) < 2 or all(t in tag_words for t in content):
                        continue
                    runs.setdefault(run, set()).add((entity, value))
    return runs


def _extend_closing(text: str, end: int, value: str) -> int:
    """Include a name's trailing bracket or punctuation when the text has it too."""
    tail = re.search(r"[^\w\s]+$", value)
    if tail and text.startswith(tail.group(), end):
        return end + len(tail.group())
    return end


__all__ = ["Gazetteer", "Reading", "Vocabulary", "catalog_vocabulary"]
