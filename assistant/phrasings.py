"""The assistant's phrasings, read from the NLU data, as speech recognition needs them.

Each NLU example (``assistant/rasa_project/data/nlu.yml``) becomes a template
whose ``[text](entity)`` spans are slots; each slot lists every value the data
knows. The recogniser's prompt takes the short commands from here, and the
name matcher (assistant.speech_match) the phrasings around a name. So adding
an example to the NLU data teaches the voice path too.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

NLU_DATA = Path(__file__).resolve().parent / "rasa_project" / "data" / "nlu.yml"

# entity slots worth a rule of their own (others are kept literally from the example)
SLOT_ENTITIES = ("artist", "track", "album", "genre", "mood", "instrument", "playlist")
# slots whose values, given a catalog, are exactly the catalog's names
LIBRARY_SLOTS = ("artist", "track", "album")
_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\(([^)]+)\)|(\{[^}]*\}))")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")

_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen \
fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_DECADES = {
    "20": "twenties",
    "30": "thirties",
    "40": "forties",
    "50": "fifties",
    "60": "sixties",
    "70": "seventies",
    "80": "eighties",
    "90": "nineties",
}


def number_words(n: int) -> str:
    """0 <= n < 10000 in words, as a person says it ("one hundred twenty", "nineteen ninety")."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + number_words(rest))
    if 1100 <= n < 2000 or (2010 <= n < 2100):  # years: "nineteen ninety", "twenty twenty"
        high, low = divmod(n, 100)
        if low == 0:
            return number_words(high) + " hundred"
        return number_words(high) + (" oh " if low < 10 else " ") + number_words(low)
    rest = n % 1000
    return _ONES[n // 1000] + " thousand" + ("" if rest == 0 else " " + number_words(rest))


def spoken_words(text: str) -> list[str]:
    """Text as the words a person would say: lower case, numbers and decades spelled out."""
    text = text.lower().replace("&", " and ").replace("’", "'")
    text = re.sub(
        r"\b(1[0-9]|20)?([2-9]0)'?s\b",
        lambda m: (
            (number_words(int(m.group(1))) + " " if m.group(1) else "") + _DECADES[m.group(2)]
        ),
        text,
    )
    text = re.sub(
        r"\d+", lambda m: number_words(int(m.group())) if len(m.group()) <= 4 else "", text
    )
    text = re.sub(r"[-_/.:]", " ", text)
    return _WORD.findall(text)


@dataclass
class Template:
    """One phrasing: literal words and slot names (``<artist>``), in order."""

    intent: str
    parts: list[str]


@dataclass
class Phrasings:
    """The NLU data reduced to what speech needs."""

    templates: list[Template] = field(default_factory=list)
    values: dict[str, set[str]] = field(default_factory=dict)  # slot -> phrases


def load_phrasings(path: Path = NLU_DATA) -> Phrasings:
    """Read the NLU examples and lookup tables into templates and slot values."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    out = Phrasings(values={name: set() for name in SLOT_ENTITIES})
    for block in data.get("nlu", []):
        lines = _examples(block.get("examples", ""))
        if "intent" in block:
            for line in lines:
                out.templates.append(_template(block["intent"], line, out.values))
        elif "lookup" in block and block["lookup"] in out.values:
            out.values[block["lookup"]].update(lines)
    return out


def _examples(text: str) -> list[str]:
    return [ln.strip()[2:].strip() for ln in str(text).splitlines() if ln.strip().startswith("- ")]


def _template(intent: str, line: str, values: dict[str, set[str]]) -> Template:
    parts: list[str] = []
    pos = 0
    for match in _ANNOTATION.finditer(line):
        parts.extend(spoken_words(line[pos : match.start()]))
        entity = match.group(2)
        if entity is None:  # [text]{"entity": "...", "value": ...}
            found = re.search(r'"entity"\s*:\s*"([^"]+)"', match.group(3))
            entity = found.group(1) if found else ""
        entity = entity.split(":")[0]
        if entity in values:
            values[entity].add(match.group(1))
            parts.append(f"<{entity}>")
        else:
            parts.extend(spoken_words(match.group(1)))
        pos = match.end()
    parts.extend(spoken_words(line[pos:]))
    return Template(intent, parts)


def typical_commands(
    phrasings: Phrasings, max_words: int = 6, slotted: bool = False
) -> list[list[str]]:
    """Typical phrasings of at most ``max_words`` words and slots, one intent at a time.

    Only phrasings with a slot (``slotted``) or only those without. Within an
    intent, a phrasing is more typical the more its words (and slots) recur in
    that intent's examples: the mean of their log counts, so typos and one-off
    words pull it down. The list takes each intent's most typical phrasing (in
    the NLU data's order of intents), then each one's second, and so on.
    Out-of-scope examples are left out.
    """
    by_intent: dict[str, list[tuple[str, ...]]] = {}
    for t in phrasings.templates:
        if t.intent != "out_of_scope" and 0 < len(t.parts) <= max_words:
            by_intent.setdefault(t.intent, []).append(tuple(t.parts))
    ranked: list[list[tuple[str, ...]]] = []
    for examples in by_intent.values():
        counts = Counter(w for parts in examples for w in set(parts))

        def typical(parts: tuple[str, ...], counts: Counter = counts) -> tuple:
            return (-sum(math.log(counts[w]) for w in parts) / len(parts), parts)

        kept = {p for p in examples if any(w.startswith("<") for w in p) == slotted}
        kept = {p for p in kept if not all(w.startswith("<") for w in p)}
        ranked.append(sorted(kept, key=typical))
    order: list[list[str]] = []
    for i in range(max((len(r) for r in ranked), default=0)):
        order.extend(list(r[i]) for r in ranked if i < len(r))
    return order


def short_commands(phrasings: Phrasings, max_words: int = 4) -> list[str]:
    """``typical_commands`` without slots ("help", "pause"), as text."""
    return [" ".join(p) for p in typical_commands(phrasings, max_words)]


def slot_values(
    phrasings: Phrasings, catalog_names: dict[str, Iterable[str]] | None = None
) -> dict[str, list[list[str]]]:
    """Each slot's values as spoken words; with a catalog, its names replace the data's
    artists, tracks and albums (the NLU examples' names are not in this library)."""
    slots: dict[str, list[list[str]]] = {}
    for slot in SLOT_ENTITIES:
        values = set(phrasings.values.get(slot, set()))
        if catalog_names is not None and slot in LIBRARY_SLOTS:
            values = set(catalog_names.get(slot, []))
        elif catalog_names is not None:
            values |= set(catalog_names.get(slot, []))
        words = {tuple(spoken_words(v)) for v in values}
        slots[slot] = [list(w) for w in sorted(words) if w]
    return slots


def bodies(phrasings: Phrasings) -> list[tuple[str, ...]]:
    """Every phrasing once: its words and ``<slot>`` marks."""
    return sorted({tuple(t.parts) for t in phrasings.templates if t.parts})
