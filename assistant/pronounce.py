"""Words as phones: espeak-ng's pronunciation of a word, read as ARPAbet.

The name matcher compares what was heard with the library's names by sound; a
word's sound is espeak-ng's IPA for it, mapped onto ARPAbet phones (one symbol
per phone, so an edit distance counts sounds, not letters). Kept apart from the
matching so that the phone alphabet is one table in one place.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable

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
    """Words' pronunciations from espeak-ng (empty if it is not installed)."""
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


class Pronouncer:
    """Word -> ARPAbet phones by espeak-ng, cached; ``learn`` asks for many words in one call."""

    def __init__(self) -> None:
        self._cache: dict[str, str | None] = {}

    def learn(self, words: Iterable[str]) -> None:
        missing = sorted({w for w in words if w not in self._cache})
        if missing:
            found = espeak_pronunciations(missing)
            self._cache.update({w: found.get(w) for w in missing})

    def __call__(self, word: str) -> str | None:
        if word not in self._cache:
            self.learn([word])
        return self._cache[word]
