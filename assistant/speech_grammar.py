"""What the speech recogniser expects to hear: a language model made from the NLU's phrasings.

An open English language model turns "play battle music" into "the battle you";
a grammar of the commands the assistant understands, with the library's own
names in the slots, does much better. The phrasings come from the NLU
training data (``assistant/rasa_project/data/nlu.yml``): each example becomes a template
whose ``[text](entity)`` spans are slots, and each slot lists every value the
data and the catalog know (artists, track titles, albums, tags). So adding an
example to the NLU data, or a track to the library, teaches the recogniser too.

Words the pronouncing dictionary lacks are spelled from dictionary words when
they split into some ("maxstack" -> "max" + "stack"); templates and names with
words that cannot be pronounced are left out (typed chat still has them).

A JSGF grammar of the same phrasings was tried first: pocketsphinx took
seconds per command on it and returned nothing for slightly off-grammar
speech; a trigram model over the filled-in templates decodes in a fraction of
a second and degrades gracefully. A grammar of only the short slot-free
commands (``short_commands``) is small enough to be fast, and the recogniser
uses it beside the trigram model for short utterances.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
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


@dataclass
class SpeechModel:
    """A domain language model (ARPA text) and the pronunciations it needs beyond the dictionary."""

    arpa: str
    extra_words: dict[str, str]  # word -> phones, for words built from dictionary pieces
    sentences: int
    templates: int
    names: dict[str, int]  # slot -> how many values made it in
    dropped_words: set[str]
    vocabulary: set[str] = field(default_factory=set)
    slots: dict[str, list[list[str]]] = field(default_factory=dict)  # slot -> its values' words
    bodies: list[tuple[str, ...]] = field(default_factory=list)  # phrasings: words and <slot>s


def build_speech_model(
    phrasings: Phrasings,
    pronounce: Callable[[str], str | None],
    catalog_names: dict[str, Iterable[str]] | None = None,
    per_template: int = 4,
    guess: Callable[[list[str]], dict[str, str]] | None = None,
) -> SpeechModel:
    """A trigram model of the commands in ``phrasings`` with ``catalog_names`` in their slots.

    Every template is filled ``per_template`` times, taking slot values in
    turn, so every name appears in several phrasings. ``pronounce(word)`` gives
    the dictionary phones of a word or None; ``guess(words)`` pronounces the
    words the dictionary lacks (default: espeak-ng's letter-to-sound rules).
    """
    slots: dict[str, set[str]] = {name: set(v) for name, v in phrasings.values.items()}
    for slot, names in (catalog_names or {}).items():
        names = {n for n in names if n}
        if slot in LIBRARY_SLOTS and names:
            slots[slot] = names  # say only what the library holds: fewer near-misses
        else:
            slots.setdefault(slot, set()).update(names)
    # only names are guessed: a phrasing's unknown words are its typos ("plz", "hlep")
    every = {w for names in slots.values() for n in names for w in spoken_words(n)}
    missing = sorted(w for w in every if not pronounce(w))
    speller = _Speller(pronounce, (guess or espeak_pronunciations)(missing) if missing else {})
    rules: dict[str, list[list[str]]] = {}
    for slot, names in slots.items():
        phrases = {tuple(w) for n in names if (w := spoken_words(n)) and all(map(speller.ok, w))}
        if phrases:
            rules[slot] = [list(p) for p in sorted(phrases)]
    bodies = {
        tuple(t.parts)
        for t in phrasings.templates
        if t.parts
        and all(speller.ok(p) for p in t.parts if not p.startswith("<"))
        and all(p[1:-1] in rules for p in t.parts if p.startswith("<"))
    }
    sentences: list[list[str]] = []
    turn = dict.fromkeys(rules, 0)
    for body in sorted(bodies):  # a phrasing without a slot weighs as much as a filled one
        for _ in range(per_template):
            words: list[str] = []
            for part in body:
                if part.startswith("<"):
                    values = rules[part[1:-1]]
                    words.extend(values[turn[part[1:-1]] % len(values)])
                    turn[part[1:-1]] += 1
                else:
                    words.append(part)
            sentences.append(words)
    for values in rules.values():  # a bare name is a command too ("battle music")
        sentences.extend(values)
    return SpeechModel(
        arpa=arpa_trigram(sentences),
        extra_words=speller.extra,
        sentences=len(sentences),
        templates=len(bodies),
        names={slot: len(p) for slot, p in rules.items()},
        dropped_words=speller.unknown,
        vocabulary={w for sentence in sentences for w in sentence},
        slots=rules,
        bodies=sorted(bodies),
    )


def arpa_trigram(sentences: list[list[str]], discount: float = 0.5) -> str:
    """A back-off trigram model in ARPA text, with absolute discounting.

    Seen n-grams keep their count less ``discount``; what is taken is spread
    over the lower order, and the back-off weights make each history's
    probabilities sum to one.
    """
    counts: list[Counter] = [Counter(), Counter(), Counter()]
    for sentence in sentences:
        words = ["<s>", *sentence, "</s>"]
        for n in range(3):
            for i in range(len(words) - n):
                gram = tuple(words[i : i + n + 1])
                if gram != ("<s>",):
                    counts[n][gram] += 1
    vocab = sorted({g[0] for g in counts[0]} | {"<s>"})
    total = sum(counts[0].values())
    prob: list[dict[tuple, float]] = [{}, {}, {}]
    for w in vocab:  # add-half unigrams; <s> is never predicted
        prob[0][(w,)] = 0.0 if w == "<s>" else (counts[0][(w,)] + 0.5) / (total + 0.5 * len(vocab))
    backoff: list[dict[tuple, float]] = [{}, {}, {}]
    for n in (1, 2):
        history_total: Counter = Counter()
        history_types: Counter = Counter()
        for gram, c in counts[n].items():
            history_total[gram[:-1]] += c
            history_types[gram[:-1]] += 1
        for gram, c in counts[n].items():
            h = gram[:-1]
            lower = _backed_off(prob, backoff, gram[1:])
            share = discount * history_types[h] / history_total[h]
            prob[n][gram] = (c - discount) / history_total[h] + share * lower
        seen: dict[tuple, list[tuple]] = {}
        for gram in counts[n]:
            seen.setdefault(gram[:-1], []).append(gram)
        for h, grams in seen.items():
            left = 1.0 - sum(prob[n][g] for g in grams)
            lower_left = 1.0 - sum(_backed_off(prob, backoff, g[1:]) for g in grams)
            backoff[n - 1][h] = max(left, 1e-12) / max(lower_left, 1e-12)
    lines = ["\\data\\"]
    lines += [f"ngram {n + 1}={len(prob[n])}" for n in range(3)]
    for n in range(3):
        lines += ["", f"\\{n + 1}-grams:"]
        for gram, p in sorted(prob[n].items()):
            logp = -99.0 if p <= 0 else math.log10(p)
            text = f"{logp:.4f} {' '.join(gram)}"
            if n < 2:
                text += f" {math.log10(backoff[n].get(gram, 1.0)):.4f}"
            lines.append(text)
    lines += ["", "\\end\\", ""]
    return "\n".join(lines)


def _backed_off(prob: list[dict[tuple, float]], backoff: list[dict[tuple, float]], gram: tuple):
    """P(last word | rest) from the orders already computed, backing off as ARPA readers do."""
    if len(gram) == 1:
        return prob[0].get(gram, 0.0)
    n = len(gram) - 1
    if gram in prob[n]:
        return prob[n][gram]
    return backoff[n - 1].get(gram[:-1], 1.0) * _backed_off(prob, backoff, gram[1:])


class _Speller:
    """Pronounces words from the dictionary, or from dictionary words they split into."""

    def __init__(self, pronounce: Callable[[str], str | None], guessed: dict[str, str]) -> None:
        self._pronounce = pronounce
        self._guessed = guessed
        self.extra: dict[str, str] = {}
        self.unknown: set[str] = set()

    def ok(self, word: str) -> bool:
        if word in self.extra or self._pronounce(word):
            return True
        if word in self.unknown:
            return False
        phones = self._guessed.get(word) or (self._split(word) if len(word) > 6 else None)
        if phones is None:
            self.unknown.add(word)
            return False
        self.extra[word] = phones
        return True

    def _split(self, word: str) -> str | None:
        """Fewest dictionary pieces of at least 3 letters that spell ``word`` (None if none)."""
        best: list[list[str] | None] = [None] * (len(word) + 1)
        best[0] = []
        for end in range(3, len(word) + 1):
            for start in range(0, end - 2):
                head = best[start]
                if head is None:
                    continue
                phones = self._pronounce(word[start:end])
                if phones and (best[end] is None or len(head) + 1 < len(best[end])):
                    best[end] = [*head, phones]
        pieces = best[len(word)]
        if not pieces or len(pieces) < 2:
            return None
        phones: list[str] = []
        for piece in pieces:  # "max" + "stack": one S where the pieces meet
            more = piece.split()
            phones.extend(more[1:] if phones and phones[-1] == more[0] else more)
        return " ".join(phones)


@cache
def dictionary(path: str) -> dict[str, str]:
    """The pronouncing dictionary (first pronunciation of each word)."""
    words: dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            word, _, phones = line.strip().partition(" ")
            if "(" not in word:
                words.setdefault(word, phones.strip())
    return words


# IPA (as espeak-ng writes it) -> the ARPAbet phones of the pocketsphinx model; longest first
_IPA = {
    "tʃ": "CH", "dʒ": "JH", "eɪ": "EY", "aɪ": "AY", "ɔɪ": "OY", "aʊ": "AW", "oʊ": "OW",
    "əʊ": "OW", "ɪə": "IH R", "eə": "EH R", "ʊə": "UH R", "ɑːɹ": "AA R", "ɔːɹ": "AO R",
    "æ": "AE", "ɑ": "AA", "ɒ": "AA", "ɔ": "AO", "ʌ": "AH", "ə": "AH", "ɐ": "AH", "ɚ": "ER",
    "ɜ": "ER", "ɛ": "EH", "e": "EH", "ɪ": "IH", "ᵻ": "IH", "i": "IY", "ʊ": "UH", "u": "UW",
    "o": "OW", "a": "AE", "ɾ": "T", "ɹ": "R", "r": "R", "l": "L", "ɫ": "L", "m": "M",
    "n": "N", "ŋ": "NG", "p": "P", "b": "B", "t": "T", "d": "D", "k": "K", "g": "G",
    "ɡ": "G", "f": "F", "v": "V", "θ": "TH", "ð": "DH", "s": "S", "z": "Z", "ʃ": "SH",
    "ʒ": "ZH", "h": "HH", "j": "Y", "w": "W", "x": "K", "ç": "HH",
}  # fmt: skip
_IGNORED_IPA = set("ˈˌːˑ‿ʔ-_' ")


def ipa_to_arpabet(ipa: str) -> str | None:
    """espeak-ng's IPA for one word as ARPAbet phones (None if a symbol is unknown)."""
    phones: list[str] = []
    i = 0
    while i < len(ipa):
        if ipa[i] in _IGNORED_IPA:
            i += 1
            continue
        for size in (3, 2, 1):
            chunk = ipa[i : i + size].replace("ː", "")
            if ipa[i : i + size] in _IPA or (size > 1 and chunk in _IPA and len(chunk) > 1):
                key = ipa[i : i + size] if ipa[i : i + size] in _IPA else chunk
                for phone in _IPA[key].split():
                    if not phones or phones[-1] != phone:  # "ss" in "maxstack" is one S
                        phones.append(phone)
                i += size
                break
        else:
            return None
    return " ".join(phones) or None


def espeak_pronunciations(words: list[str]) -> dict[str, str]:
    """Pronunciations of dictionary-less words from espeak-ng (empty if it is not installed)."""
    import shutil
    import subprocess

    exe = shutil.which("espeak-ng")
    if exe is None or not words:
        return {}
    text = "".join(f"{w}.\n" for w in words)
    proc = subprocess.run(
        [exe, "-q", "--ipa", "-v", "en-us"], input=text, capture_output=True, text=True, timeout=60
    )
    lines = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip()]
    if proc.returncode != 0 or len(lines) != len(words):
        return {}
    out = {}
    for word, ipa in zip(words, lines, strict=True):
        phones = ipa_to_arpabet(ipa)
        if phones:
            out[word] = phones
    return out


def short_commands(
    phrasings: Phrasings, known: Callable[[str], bool], max_words: int = 4
) -> list[str]:
    """The slot-free phrasings of at most ``max_words`` words ("help", "next track").

    The trigram model, trained mostly on long commands with names, hears such
    short commands poorly; a grammar of just these gives them a search of their
    own. ``known(word)`` says whether the recogniser can pronounce a word;
    phrasings with other words (typos) and out-of-scope chatter are left out.
    """
    return sorted(
        {
            " ".join(t.parts)
            for t in phrasings.templates
            if t.parts
            and t.intent != "out_of_scope"
            and len(t.parts) <= max_words
            and not any(p.startswith("<") for p in t.parts)
            and all(map(known, t.parts))
        }
    )


def jsgf(name: str, phrases: list[str]) -> str:
    """A JSGF grammar that accepts exactly one of ``phrases``."""
    if not phrases:
        raise ValueError(f"grammar {name!r} needs at least one phrase")
    return f"#JSGF V1.0;\ngrammar {name};\npublic <{name}> = " + " | ".join(phrases) + " ;\n"
