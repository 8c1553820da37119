"""Finding the tracks, artists and albums a question names.

Works on the in-memory snapshot with exact-then-fuzzy matching (rapidfuzz), so
typos, case and accents do not matter, and an unknown name comes back with the
closest names in the library as suggestions instead of a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

from assistant.qa.library import Snapshot, TrackInfo
from catalog.names import fold
from catalog.queries import find_tracks

FIELDS = ("track", "artist", "album", "composer")

#: Fuzzy matches below this score are not taken as a mention of the name.
FUZZY_CUTOFF = 88.0
#: Names shorter than this must match exactly (fuzzy matching short words misfires).
MIN_FUZZY_LEN = 6


@dataclass
class Mention:
    """A catalog name found in the question text."""

    field: str  # track / artist / album / composer
    name: str  # the catalog's spelling
    start: int  # offsets into the normalised question
    end: int
    score: float


@dataclass
class Resolution:
    """What a name resolved to: tracks, or nothing plus suggestions."""

    query: str
    field: str
    tracks: list[TrackInfo] = field(default_factory=list)
    name: str | None = None
    suggestions: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return bool(self.tracks)


class Gazetteer:
    """Every normalised catalog name with the tracks it stands for."""

    def __init__(self, snapshot: Snapshot, catalog=None) -> None:
        self.snapshot = snapshot
        self.catalog = catalog  # for catalog.queries.find_tracks when our own matching fails
        self.names: dict[str, dict[str, str]] = {f: {} for f in FIELDS}
        self.tracks: dict[str, dict[str, list[int]]] = {f: {} for f in FIELDS}
        for t in snapshot.tracks.values():
            for f, value in (
                ("track", t.title),
                ("artist", t.artist),
                ("album", t.album),
                ("composer", t.composer),
            ):
                if not value:
                    continue
                key = fold(value)
                if not key:
                    continue
                self.names[f].setdefault(key, value)
                self.tracks[f].setdefault(key, []).append(t.id)
                # "Title (extra)" is also known as "Title"
                short = fold(_PARENTHESES.sub(" ", value))
                if short and short != key and f in ("track", "album"):
                    self.names[f].setdefault(short, value)
                    self.tracks[f].setdefault(short, []).append(t.id)
        # a distinctive word of one title stands for it ("Knolls" -> "The Knolls of Doldesh")
        seen: dict[str, set[str]] = {}
        for key in self.names["track"]:
            for word in key.split():
                if len(word) >= 5 and word not in _COMMON_WORDS:
                    seen.setdefault(word, set()).add(key)
        self.partials = {w: next(iter(keys)) for w, keys in seen.items() if len(keys) == 1}
        self.partials = {w: k for w, k in self.partials.items() if w != k}
        self._fuzzy_keys = sorted(
            {k for f in FIELDS for k in self.names[f] if len(k) >= MIN_FUZZY_LEN}
        )

    # -- spotting names inside a question ---------------------------------------------------

    def spot(self, text: str) -> list[Mention]:
        """Non-overlapping catalog names in ``text``, longest and best first."""
        norm = fold(text)
        padded = f" {norm} "
        candidates: list[Mention] = []
        original_words = set(re.findall(r"\w+", text))
        # one C-level pass finds the names worth aligning; the Python loop stays short
        near = {
            key
            for key, _score, _ in process.extract(
                norm,
                self._fuzzy_keys,
                scorer=fuzz.partial_ratio,
                score_cutoff=FUZZY_CUTOFF,
                limit=None,
            )
        }
        for f in FIELDS:
            for key, name in self.names[f].items():
                idx = padded.find(f" {key} ") if key in norm else -1
                if idx >= 0:
                    score = 100.0
                    if " " not in key and not any(
                        w[:1].isupper() and fold(w) == key for w in original_words
                    ):
                        score = 75.0  # a lowercase common word ("sad") is weak evidence
                    candidates.append(Mention(f, name, idx, idx + len(key), score))
                elif key in near:
                    al = fuzz.partial_ratio_alignment(key, norm, score_cutoff=FUZZY_CUTOFF)
                    if al is None:
                        continue
                    start, end = al.dest_start, al.dest_end
                    while start < end and norm[start] == " ":
                        start += 1
                    while end > start and norm[end - 1] == " ":
                        end -= 1
                    # snap the span out to whole words, then score the words themselves
                    while start > 0 and norm[start - 1] != " ":
                        start -= 1
                    while end < len(norm) and norm[end] != " ":
                        end += 1
                    score = fuzz.ratio(key, norm[start:end])
                    if score >= FUZZY_CUTOFF and _word_aligned(norm, start, end):
                        candidates.append(Mention(f, name, start, end, float(score) - 5))
        for word in original_words:
            key = fold(word)
            if word[:1].isupper() and key in self.partials:
                idx = padded.find(f" {key} ")
                if idx >= 0:
                    title = self.partials[key]
                    candidates.append(
                        Mention("track", self.names["track"][title], idx, idx + len(key), 85.0)
                    )
        # longest span first, then best score; track titles win ties over albums/artists
        order = {"track": 0, "artist": 1, "album": 2, "composer": 3}
        candidates.sort(key=lambda m: (-(m.end - m.start), -m.score, order[m.field]))
        chosen: list[Mention] = []
        for m in candidates:
            if any(m.start < c.end and c.start < m.end for c in chosen):
                # the same span may name both an artist and a composer: keep both
                same = [c for c in chosen if c.start == m.start and c.end == m.end]
                if not same or any(c.field == m.field for c in same):
                    continue
            chosen.append(m)
        chosen.sort(key=lambda m: m.start)
        return chosen

    # -- resolving a given name ------------------------------------------------------------

    def resolve(self, query: str, field: str = "track") -> Resolution:
        key = fold(query)
        res = Resolution(query=query, field=field)
        if not key:
            return res
        table = self.tracks[field]
        if key in table:
            res.name = self.names[field][key]
            res.tracks = [self.snapshot.tracks[i] for i in table[key]]
            return res
        if field == "track" and key in self.partials:
            title = self.partials[key]
            res.name = self.names[field][title]
            res.tracks = [self.snapshot.tracks[i] for i in table[title]]
            return res
        match = process.extractOne(key, list(table), scorer=fuzz.WRatio, score_cutoff=90)
        if match is not None and len(key) >= 4:
            res.name = self.names[field][match[0]]
            res.tracks = [self.snapshot.tracks[i] for i in table[match[0]]]
            return res
        shared = self._find_tracks(query, field)
        if shared is not None and shared.matches:
            best = shared.matches[0]
            res.name = best.name
            res.tracks = [
                self.snapshot.tracks[i] for i in best.track_ids if i in self.snapshot.tracks
            ]
            if res.tracks:
                return res
        res.suggestions = self.suggest(query, field)
        if shared is not None:
            res.suggestions += [n for n in shared.suggestions if n not in res.suggestions]
            res.suggestions = res.suggestions[:3]
        return res

    def _find_tracks(self, query: str, field: str):
        """The catalog's name matcher (words inside longer names, spacing, typos)."""
        if self.catalog is None or field == "composer":
            return None
        return find_tracks(self.catalog, query, "title" if field == "track" else field)

    def suggest(self, query: str, field: str = "track", limit: int = 3) -> list[str]:
        key = fold(query)
        pool = list(self.names[field])
        if field == "track":  # a misremembered name may be an artist or album as well
            pool += list(self.names["artist"]) + list(self.names["album"])
        found = process.extract(key, pool, scorer=fuzz.WRatio, limit=limit * 2, score_cutoff=75)
        out: list[str] = []
        for cand, _score, _ in found:
            for f in FIELDS:
                name = self.names[f].get(cand)
                if name and name not in out:
                    out.append(name)
                    break
        return out[:limit]


_PARENTHESES = re.compile(r"\s*[\(\[][^\)\]]*[\)\]]")
_COMMON_WORDS = frozenset(
    """about after again against among battle their there these those theme music track
    songs piece pieces where which while would could should under other night light world
    little great""".split()
)


def _word_aligned(text: str, start: int, end: int) -> bool:
    """A fuzzy span must start and end on word boundaries of the question."""
    return (start == 0 or text[start - 1] == " ") and (end == len(text) or text[end] == " ")
