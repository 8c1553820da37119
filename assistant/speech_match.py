"""Second pass over a transcript: a misheard name becomes the library name that sounds closest.

A recogniser hears the words around a name much better than the name itself:
Whisper without the library's names in its prompt wrote "play something by
microsoft" and "my ex tech" for "play something by maxstack"; pocketsphinx
"play not so music" for "play battle music". When a transcript is not one of the
assistant's phrasings but fits one whose slot holds other words, those words
are compared by sound (their phones, edit distance with vowels alike) with the
values of that slot, and the closest value replaces them if at least half of
its sound agrees. Sounds are espeak-ng's pronunciations (its IPA read as
ARPAbet phones), asked for once per word; without espeak-ng nothing is
corrected. Words that already are names or parts of names ("mozart",
"calm piano"), or words the phrasings use themselves ("this track"), are left
alone: the NLU handles them. Only library names (artists, titles, albums)
replace words; a tag ("fast", "calm") is a common word the NLU already knows.

Whisper also mishears the command words of synthetic and accented voices
("how many tracks i maxstack", "post the music"). A transcript that fits no
phrasing even after that is compared by sound with every phrasing of at least
six phones, its names standing in their slots, and becomes the closest one
if at least 80% of the sound agrees ("how many tracks by maxstack", "pause
the music"); an out-of-domain question sounds like none and is left as heard.

Sound alone cannot tell "turn it up a little" (no phrasing) from "turn it down
a little" (one): so the recogniser (assistant.recognizer) applies none of these
by itself. The corrected names, ``nearby`` phrasings, ``respellings`` of words
the assistant does not know (a compound heard as one word, "compiano", or one
word heard as several, "harp sick or"), and ``correct``'s snap are candidates
that Whisper scores against the audio; ``names_near`` picks the library names
a turn's prompt should hold.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from assistant.pronounce import Pronouncer

# ARPAbet vowels: a synthetic or accented voice blurs them first, so they count as one sound
_SLOT = "\u00a7"  # a name's place in a phrasing's sound
MIN_SNAP_PHONES = 6  # shorter phrasings ("no", "help") are never snapped to: too many sound alike
_VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}


@dataclass
class Correction:
    """What was heard, what it became, and why."""

    text: str
    slot: str | None = None
    heard: str | None = None  # the words that were replaced
    name: str | None = None  # the slot value put in their place
    similarity: float = 0.0
    fits: bool = False  # the text is one of the assistant's phrasings (names in its slots)


class NameMatcher:
    """Snaps the slot words of an almost-known phrasing to the nearest name by sound."""

    def __init__(
        self,
        slots: dict[str, list[list[str]]],
        bodies: list[tuple[str, ...]],
        phones: Callable[[str], str | None],
        min_similarity: float = 0.5,
        targets: Iterable[str] | None = None,
        snap_similarity: float = 0.8,
    ) -> None:
        self._phones = phones
        self.snap_similarity = snap_similarity
        self._bodies = sorted(set(bodies))
        self._bodies_by_slots: dict[int, tuple[list, list]] | None = None
        # slots whose values may replace misheard words (default: all); a tag word ("fast",
        # "calm") is a common word, and the NLU knows those by spelling already
        self._targets = set(slots) if targets is None else set(targets)
        self.min_similarity = min_similarity
        self._symbols: dict[str, str] = {}
        self._literal = {" ".join(b) for b in bodies if not any(p.startswith("<") for p in b)}
        self._values = {slot: [" ".join(v) for v in values] for slot, values in slots.items()}
        self._keys = {
            slot: [self._sound(v) for v in values] for slot, values in self._values.items()
        }
        self._known = {v for values in self._values.values() for v in values}
        self._library = {v for slot in self._targets for v in self._values.get(slot, ())}
        # every run of words inside a name: "mozart", "deep path"
        self._parts = {
            " ".join(words[i:j])
            for values in slots.values()
            for words in values
            for i in range(len(words))
            for j in range(i + 1, len(words) + 1)
        }
        # a name's own words ("kaufman", "laurelmor"): of four letters or more, in no phrasing
        self._name_words = {
            w for values in slots.values() for words in values for w in words if len(w) >= 4
        }
        # every word the assistant knows: its phrasings', its names' and its tags'
        self._vocabulary = {w for body in bodies for w in body if not w.startswith("<")}
        self._vocabulary |= {w for values in slots.values() for words in values for w in words}
        self._vocab_sounds: list[str] | None = None
        self._sound_words: dict[str, list[str]] = {}
        # every run of a phrasing's own words: "this track" is no misheard name
        self._phrase_runs: set[str] = set()
        for body in bodies:
            run: list[str] = []
            for part in (*body, "<end>"):
                if part.startswith("<"):
                    self._phrase_runs.update(
                        " ".join(run[i:j])
                        for i in range(len(run))
                        for j in range(i + 1, len(run) + 1)
                    )
                    run = []
                else:
                    run.append(part)
        self._patterns: list[tuple[re.Pattern, list[str], int]] = []
        for body in sorted(set(bodies)):
            slot_names = [p[1:-1] for p in body if p.startswith("<")]
            literal = [p for p in body if not p.startswith("<")]
            if not slot_names or not literal or not all(s in self._values for s in slot_names):
                continue
            regex = " ".join("(.+?)" if p.startswith("<") else re.escape(p) for p in body)
            self._patterns.append((re.compile(regex), slot_names, len(literal)))
        # the most specific phrasing (most literal words) is tried first
        self._patterns.sort(key=lambda item: -item[2])

    def correct(self, text: str) -> Correction:
        """``text`` with a misheard name replaced, or (when it fits no phrasing) snapped to
        the phrasing that sounds closest; as it was if it fits or nothing is close."""
        fixed = self.correct_name(text)
        if fixed.text and not self._fits(fixed.text):
            snapped = self._snap(fixed.text)
            if snapped is not None:
                return Correction(snapped[0], None, text, None, snapped[1], fits=True)
            return fixed
        fixed.fits = bool(fixed.text)
        return fixed

    def is_phrasing(self, text: str) -> bool:
        """``text`` is one of the assistant's phrasings, names in its slots."""
        return bool(text) and self._whole_phrasing(text)

    def is_named_phrasing(self, text: str) -> bool:
        """``text`` is one of the assistant's phrasings as written, or with names, name
        parts or tags in every slot: not only a phrasing's own words standing in a slot
        ("recommend some come piano music" is a phrasing only that way)."""
        return bool(text) and (
            text in self._literal
            or text in self._known
            or self._slots_hold_names(text, own_words=False)
        )

    def unknown_words(self, text: str) -> int:
        """How many of ``text``'s words are in no phrasing, no name and no tag."""
        return sum(w not in self._vocabulary for w in text.split())

    def _whole_phrasing(self, text: str) -> bool:
        """A whole phrasing (not a run of one's words: a beam's truncated guess is one)."""
        return text in self._literal or text in self._known or self._slots_hold_names(text)

    def respellings(self, text: str, limit: int = 6) -> list[str]:
        """``text`` with a word the assistant does not know (in no phrasing, no name, no
        tag) replaced by the known word or library name that sounds closest: "q up some
        mattias westlund" -> "queue up ...", "remove playing" stays (both words known).
        Candidates only; the recogniser's ear decides."""
        if self._vocab_sounds is None:
            self._index_vocabulary()
        words = text.split()
        out: list[tuple[float, str]] = []
        unknown = [i for i, w in enumerate(words) if w not in self._vocabulary]
        for i in unknown:
            for word, similarity in self._known_like(words[i], 2, 0.5):
                out.append((similarity, " ".join([*words[:i], word, *words[i + 1 :]])))
            # two words heard as one: "compiano" -> "calm piano" (one half a known word)
            for cut in range(2, len(words[i]) - 1):
                head, tail = words[i][:cut], words[i][cut:]
                if head in self._vocabulary or tail in self._vocabulary:
                    for first, s1 in self._known_like(head, 1, 0.5):
                        for second, s2 in self._known_like(tail, 1, 0.5):
                            split = [*words[:i], first, second, *words[i + 1 :]]
                            out.append((min(s1, s2), " ".join(split)))
        # a run of unknown words with a neighbour may be a misheard library name
        runs: list[tuple[int, int]] = []
        for i in unknown:
            if runs and runs[-1][1] == i:
                runs[-1] = (runs[-1][0], i + 1)
            else:
                runs.append((i, i + 1))
        for start, end in runs:
            before, after = max(0, start - 1), min(len(words), end + 1)
            spans = {(start, end), (before, end), (start, after), (before, after)}
            for lo, hi in sorted(spans):
                sound = self._sound(" ".join(words[lo:hi]))
                if not sound:
                    continue
                for slot in self._targets:
                    found = process.extractOne(
                        sound,
                        self._keys[slot],
                        scorer=Levenshtein.normalized_similarity,
                        score_cutoff=0.5,
                    )
                    if found is not None:
                        name = self._values[slot][found[2]]
                        out.append((found[1], " ".join([*words[:lo], name, *words[hi:]])))
                if hi - lo > 1:  # one word heard as several: "harp sick or" -> "harpsichord"
                    for word, similarity in self._known_like(" ".join(words[lo:hi]), 1, 0.7):
                        out.append((similarity, " ".join([*words[:lo], word, *words[hi:]])))
        ranked: list[str] = []
        for _, candidate in sorted(out, key=lambda item: -item[0]):
            if candidate != text and candidate not in ranked:
                ranked.append(candidate)
        return ranked[:limit]

    def names_near(self, texts: Iterable[str], limit: int = 8, cutoff: float = 0.6) -> list[str]:
        """Library names that sound like a run of up to four words of ``texts`` (at least
        ``cutoff`` of the sound agreeing), closest first: "play metal music" -> "battle
        music". A library too big for the prompt gets these into the prompt of this turn."""
        found: dict[str, float] = {}
        for similarity, name, _ in self._sounding_like(texts, cutoff):
            found[name] = max(found.get(name, 0.0), similarity)
        return sorted(found, key=lambda name: -found[name])[:limit]

    def with_names_near(self, text: str, limit: int = 3, cutoff: float = 0.6) -> list[str]:
        """``text`` with a run of its words replaced by a library name that sounds like it,
        closest first: "play metal music" -> "play battle music" (both are phrasings, so
        ``correct_name`` leaves it; the recogniser's ear decides)."""
        found = sorted(self._sounding_like([text], cutoff), key=lambda item: -item[0])
        # a name for the whole text is no command ("hello there" -> "d luca")
        kept = [named for _, name, named in found if named != name]
        return list(dict.fromkeys(kept))[:limit]

    def _sounding_like(
        self, texts: Iterable[str], cutoff: float
    ) -> Iterable[tuple[float, str, str]]:
        """(similarity, library name, the text with that name in place of the run of up to
        four words it sounds like) for the runs of ``texts`` that are neither a name heard
        nor the phrasings' own words."""
        for text in texts:
            words = text.split()
            heard = {i for span, _ in self._library_names(words) for i in range(*span)}
            for start in range(len(words)):
                for end in range(start + 1, min(len(words), start + 4) + 1):
                    run = " ".join(words[start:end])
                    if heard & set(range(start, end)) or run in self._phrase_runs:
                        continue  # a name heard, or the phrasings' own words
                    sound = self._sound(run)
                    if len(sound) < 4:
                        continue
                    for slot in self._targets:
                        for _, similarity, index in process.extract(
                            sound,
                            self._keys[slot],
                            scorer=Levenshtein.normalized_similarity,
                            score_cutoff=cutoff,
                            limit=2,
                        ):
                            name = self._values[slot][index]
                            named = " ".join([*words[:start], name, *words[end:]])
                            yield float(similarity), name, named

    def names_in(self, texts: Iterable[str]) -> list[str]:
        """The library names that ``texts`` hold as they are, each once."""
        found = [name for text in texts for _, name in self._library_names(text.split())]
        return list(dict.fromkeys(found))

    def _library_names(self, words: list[str]) -> list[tuple[tuple[int, int], str]]:
        """Each run of ``words`` that is a library name, with its place."""
        return [
            ((start, end), run)
            for start in range(len(words))
            for end in range(start + 1, len(words) + 1)
            if (run := " ".join(words[start:end])) in self._library
        ]

    def _known_like(self, words: str, limit: int, cutoff: float) -> list[tuple[str, float]]:
        """The known words that sound most like ``words`` (at least ``cutoff`` agreeing)."""
        if words in self._vocabulary:
            return [(words, 1.0)]
        sound = self._sound(words)
        if not sound:
            return []
        return [
            (self._sound_words[found][0], float(similarity))
            for found, similarity, _ in process.extract(
                sound,
                self._vocab_sounds,
                scorer=Levenshtein.normalized_similarity,
                score_cutoff=cutoff,
                limit=limit,
            )
        ]

    def _index_vocabulary(self) -> None:
        words = sorted(self._vocabulary)
        if hasattr(self._phones, "learn"):
            self._phones.learn(words)
        by_sound: dict[str, list[str]] = {}
        for word in words:
            sound = self._sound(word)
            if sound:
                by_sound.setdefault(sound, []).append(word)
        self._sound_words = by_sound
        self._vocab_sounds = list(by_sound)

    def _fits(self, text: str) -> bool:
        """A phrasing or a run of one's words, or a phrasing whose slots hold names (or the
        phrasing's own words)."""
        if text in self._literal or text in self._known or text in self._phrase_runs:
            return True
        return self._slots_hold_names(text)

    def _slots_hold_names(self, text: str, own_words: bool = True) -> bool:
        """A phrasing with slots whose slots hold names (or, ``own_words``, the phrasing's
        own words)."""
        for pattern, _slots, _ in self._patterns:
            match = pattern.fullmatch(text)
            if match and all(self._is_name(words, own_words) for words in match.groups()):
                return True
        return False

    def _snap(self, text: str) -> tuple[str, float] | None:
        """The phrasing closest in sound to ``text`` (its names kept in the same slots), when
        at least ``snap_similarity`` of the sound agrees: "how many tracks i maxstack" ->
        "how many tracks by maxstack", "who can post the deep path" -> "who composed ..."."""
        found = self.nearby(text, 1, self.snap_similarity)
        return found[0] if found and found[0][0] != text else None

    def nearby(self, text: str, limit: int = 3, cutoff: float = 0.6) -> list[tuple[str, float]]:
        """Up to ``limit`` phrasings that sound like ``text`` (at least ``cutoff`` of the
        sound agreeing), ``text``'s names in their slots, closest first."""
        if self._bodies_by_slots is None:
            self._index_bodies()
        tokens, names = self._names_in(text)
        sound = self._sound_of(tokens)
        choices = self._bodies_by_slots.get(len(names), ([], []))
        if not sound or not choices[0]:
            return []
        out: list[tuple[str, float]] = []
        for _, similarity, index in process.extract(
            sound,
            choices[1],
            scorer=Levenshtein.normalized_similarity,
            score_cutoff=cutoff,
            limit=4 * limit,
        ):
            body = choices[0][index]
            slots = [p[1:-1] for p in body if p.startswith("<")]
            if not all(self._in_slot(n, slot) for slot, n in zip(slots, names, strict=True)):
                continue  # a name of another kind in that slot
            filled = iter(self._whole(n, slot) for slot, n in zip(slots, names, strict=True))
            phrase = " ".join(next(filled) if p.startswith("<") else p for p in body)
            if all(phrase != seen for seen, _ in out):
                out.append((phrase, float(similarity)))
            if len(out) == limit:
                break
        return out

    def _whole(self, name: str, slot: str) -> str:
        """The one ``slot`` value that has the word ``name`` ("kaufman" -> "doug kaufman"), or
        ``name`` as it is."""
        if name in self._values.get(slot, ()):
            return name
        having = [v for v in self._values.get(slot, ()) if name in v.split()]
        return having[0] if len(having) == 1 else name

    def _in_slot(self, name: str, slot: str) -> bool:
        """``name`` is one of ``slot``'s values, or a word of one ("kaufman")."""
        if name in self._values.get(slot, ()):
            return True
        return " " not in name and any(name in v.split() for v in self._values.get(slot, ()))

    def _names_in(self, text: str) -> tuple[list[str], list[str]]:
        """``text``'s words with each known name (longest first), or a word only names
        have ("kaufman", "haydn"), as one ``<>`` token."""
        words = text.split()
        tokens: list[str] = []
        names: list[str] = []
        i = 0
        while i < len(words):
            for j in range(len(words), i, -1):
                run = " ".join(words[i:j])
                if run in self._phrase_runs:
                    continue
                if run in self._known or (j == i + 1 and run in self._name_words):
                    tokens.append("<>")
                    names.append(run)
                    i = j
                    break
            else:
                tokens.append(words[i])
                i += 1
        return tokens, names

    def _sound_of(self, tokens: list[str]) -> str:
        parts = []
        for token in tokens:
            part = _SLOT if token.startswith("<") else self._sound(token)
            if not part:
                return ""
            parts.append(part)
        return "".join(parts)

    def _index_bodies(self) -> None:
        """Sounds of every phrasing whose slots all take names, grouped by slot count."""
        if hasattr(self._phones, "learn"):
            self._phones.learn(w for b in self._bodies for w in b if not w.startswith("<"))
        grouped: dict[int, tuple[list, list]] = {}
        for body in self._bodies:
            slots = [p[1:-1] for p in body if p.startswith("<")]
            if not all(slot in self._values for slot in slots):
                continue
            sound = self._sound_of(list(body))
            if len(sound) >= MIN_SNAP_PHONES:
                group = grouped.setdefault(len(slots), ([], []))
                group[0].append(body)
                group[1].append(sound)
        self._bodies_by_slots = grouped

    def correct_name(self, text: str) -> Correction:
        """``text`` with the words in one slot of a phrasing replaced by the name of that
        slot that sounds closest (as it was when it fits, or nothing is close)."""
        if not text or text in self._literal or text in self._known:
            return Correction(text)
        candidates: list[Correction] = []
        for pattern, slot_names, _ in self._patterns:
            match = pattern.fullmatch(text)
            if match is None:
                continue
            spans = list(zip(slot_names, match.groups(), strict=True))
            if all(self._is_name(words) for _, words in spans):
                if any(self._is_name(words, own_words=False) for _, words in spans):
                    return Correction(text)  # a known phrasing with names in it
                continue  # only phrasing words in its slots ("play not so music"): try others
            odd = [(slot, words) for slot, words in spans if not self._is_name(words)]
            if len(odd) != 1:
                continue
            slot, words = odd[0]
            if slot not in self._targets:
                continue
            if any(f" {name} " in f" {words} " for name in self._known):
                continue  # a whole name plus other words: the other words were misheard
            best = self._nearest(slot, words)
            if best is None:
                continue
            name, similarity = best
            start, end = match.span(slot_names.index(slot) + 1)
            fixed = text[:start] + name + text[end:]
            candidates.append(Correction(fixed, slot, words, name, similarity))
        if not candidates:
            return Correction(text)
        return max(candidates, key=lambda c: c.similarity)

    def _is_name(self, words: str, own_words: bool = True) -> bool:
        """Words needing no correction: names or name parts in a row, or (``own_words``)
        a phrasing's own words."""
        if own_words and words in self._phrase_runs:
            return True
        tokens = words.split()
        ends = {0}  # prefixes of ``tokens`` made of whole name parts
        for end in range(1, len(tokens) + 1):
            if any(" ".join(tokens[start:end]) in self._parts for start in ends if start < end):
                ends.add(end)
        return len(tokens) in ends

    def _nearest(self, slot: str, words: str) -> tuple[str, float] | None:
        sound = self._sound(words)
        if not sound:
            return None
        found = process.extractOne(
            sound,
            self._keys[slot],
            scorer=Levenshtein.normalized_similarity,
            score_cutoff=self.min_similarity,
        )
        if found is None:
            return None
        _, similarity, index = found
        return self._values[slot][index], float(similarity)

    def _sound(self, text: str) -> str:
        """The phones of ``text`` as one character each (vowels as one), '' if a word has none."""
        out: list[str] = []
        for word in text.split():
            phones = self._phones(word)
            if not phones:
                return ""
            for phone in phones.split():
                phone = "V" if phone.rstrip("012") in _VOWELS else phone.rstrip("012")
                out.append(self._symbols.setdefault(phone, chr(0x100 + len(self._symbols))))
        return "".join(out)


def library_matcher(catalog_names: dict[str, Iterable[str]] | None = None) -> NameMatcher:
    """A matcher over the NLU's phrasings with the library's names in their slots."""
    from assistant.phrasings import LIBRARY_SLOTS, bodies, load_phrasings, slot_values

    phrasings = load_phrasings()
    slots = slot_values(phrasings, catalog_names)
    pronounce = Pronouncer()
    pronounce.learn(w for values in slots.values() for value in values for w in value)
    return NameMatcher(slots, bodies(phrasings), pronounce, targets=LIBRARY_SLOTS)
