"""Second pass over a transcript: a misheard name becomes the library name that sounds closest.

pocketsphinx hears the words around a name much better than the name itself:
"play something by my stop it" for "play something by maxstack", "play not so
music" for "play battle music". When a transcript is not one of the
assistant's phrasings but fits one whose slot holds other words, those words
are compared by sound (their phones, edit distance with vowels alike) with the
values of that slot, and the closest value replaces them if at least half of
its sound agrees. Words that already are names or parts of names ("mozart",
"calm piano"), or words the phrasings use themselves ("this track"), are left
alone: the NLU handles them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

# ARPAbet vowels: a synthetic or accented voice blurs them first, so they count as one sound
_VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}


@dataclass
class Correction:
    """What was heard, what it became, and why."""

    text: str
    slot: str | None = None
    heard: str | None = None  # the words that were replaced
    name: str | None = None  # the slot value put in their place
    similarity: float = 0.0


class NameMatcher:
    """Snaps the slot words of an almost-known phrasing to the nearest name by sound."""

    def __init__(
        self,
        slots: dict[str, list[list[str]]],
        bodies: list[tuple[str, ...]],
        phones: Callable[[str], str | None],
        min_similarity: float = 0.5,
    ) -> None:
        self._phones = phones
        self.min_similarity = min_similarity
        self._symbols: dict[str, str] = {}
        self._literal = {" ".join(b) for b in bodies if not any(p.startswith("<") for p in b)}
        self._values = {slot: [" ".join(v) for v in values] for slot, values in slots.items()}
        self._keys = {
            slot: [self._sound(v) for v in values] for slot, values in self._values.items()
        }
        self._known = {v for values in self._values.values() for v in values}
        # every run of words inside a name: "mozart", "deep path"
        self._parts = {
            " ".join(words[i:j])
            for values in slots.values()
            for words in values
            for i in range(len(words))
            for j in range(i + 1, len(words) + 1)
        }
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
        """``text`` with a misheard name replaced; as it was if it fits or no name is close."""
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
