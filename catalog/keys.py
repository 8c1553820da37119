"""Musical key names: one reader for every way a key is written, one comparison.

Analysis stores a tonic as it spelled it ("F#", "Bb", music21's "E-"), a person
types "f#m", "G flat minor" or "Bb major", and a question says "in c sharp
minor". All of them meet here as a pitch class (C is 0, C# and Db are 1), so
"Db" and "C#" are the same key everywhere: in SQL filters, in QA and in the
benchmarks.
"""

from __future__ import annotations

import re

from musicbert.errors import MusicBertError

_PITCH = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
#: Every spelling of each pitch class, the common one first.
_SPELLINGS: dict[int, tuple[str, ...]] = dict(
    enumerate(
        [
            ("C", "B#"),
            ("C#", "Db"),
            ("D",),
            ("D#", "Eb"),
            ("E", "Fb"),
            ("F", "E#"),
            ("F#", "Gb"),
            ("G",),
            ("G#", "Ab"),
            ("A",),
            ("A#", "Bb"),
            ("B", "Cb"),
        ]
    )
)
_SHARP = ("#", "♯", "sharp", "-sharp", " sharp")
_KEY = re.compile(
    r"^\s*(?:(?P<tonic>[a-g])\s*(?P<acc>#|♯|b|♭|-|-?sharp|-?flat)?)?\s*"
    r"(?P<mode>major|minor|maj|min|m|dur|moll)?\s*$",
    re.IGNORECASE,
)
#: A key named inside a sentence: "in c sharp minor", "f# major" (lower-case text).
_KEY_IN_TEXT = re.compile(r"\b([a-g])( ?(?:#|sharp|b|flat))? (major|minor)\b")


class KeyNameError(MusicBertError):
    """A key written in a way no reader of keys understands."""


def pitch_class(tonic: str | None) -> int | None:
    """0-11 for a tonic such as "F#", "Gb", "g-" (music21's flat) or "C sharp"; else None."""
    if not tonic:
        return None
    t = tonic.strip()
    base = _PITCH.get(t[:1].upper())
    if base is None:
        return None
    rest = t[1:].strip().lower()
    if rest in ("sharp", "flat"):
        return (base + (1 if rest == "sharp" else -1)) % 12
    shift = 0
    for ch in rest:
        if ch in "#♯":
            shift += 1
        elif ch in "b♭-":
            shift -= 1
        else:
            return None
    return (base + shift) % 12


def spell(tonic: str) -> str:
    """The common spelling of a tonic's pitch class ("Gb" -> "F#", "e-" -> "D#")."""
    pc = pitch_class(tonic)
    if pc is None:
        raise KeyNameError(f"{tonic!r} is not a note name")
    return _SPELLINGS[pc][0]


def key_spellings(tonic: str) -> tuple[str, ...]:
    """Every spelling of a tonic's pitch class, as analysis may have stored any of them."""
    pc = pitch_class(tonic)
    if pc is None:
        raise KeyNameError(f"{tonic!r} is not a note name")
    return _SPELLINGS[pc]


def parse_key(text: str | None) -> tuple[str | None, str | None]:
    """("F#", "minor") from "F# minor", "f#m", "Gb min", "E- major"; (None, "minor") from "minor".

    Raises ``KeyNameError`` for text that names no key.
    """
    match = _KEY.match(text or "")
    if not match or not (match["tonic"] or match["mode"]):
        raise KeyNameError(f"cannot read the key {text!r}; write it like 'F# minor' or 'Bb major'")
    tonic = None
    if match["tonic"]:
        acc = (match["acc"] or "").lower()
        shift = 1 if acc in _SHARP else -1 if acc else 0
        tonic = _SPELLINGS[(_PITCH[match["tonic"].upper()] + shift) % 12][0]
    mode = match["mode"]
    if mode:
        mode = "minor" if mode.lower() in ("minor", "min", "moll", "m") else "major"
    return tonic, mode


def read_key(text: str | None) -> tuple[str | None, str | None]:
    """``parse_key`` for stored or estimated values: (None, None) where nothing can be read."""
    try:
        return parse_key(text)
    except KeyNameError:
        return None, None


def find_key(text: str) -> re.Match | None:
    """The first key named in lower-case ``text``; "a minor key" reads as the mode, not A minor.

    Groups: 1 the letter, 2 the accidental (or None), 3 the mode.
    """
    for m in _KEY_IN_TEXT.finditer(text):
        if (
            m.group(1) == "a"
            and not m.group(2)
            and text[m.end() :].startswith((" key", " mode", " or ", " and "))
        ):
            continue
        return m
    return None


def tonic_of(match: re.Match) -> str:
    """The tonic named by a ``find_key`` match, spelled as written ("c sharp" -> "C#")."""
    acc = (match.group(2) or "").strip()
    letter = match.group(1).upper()
    return letter + ("#" if acc in ("#", "sharp") else "b" if acc in ("b", "flat") else "")


def same_key(a: tuple[str | None, str | None], b: tuple[str | None, str | None]) -> bool | None:
    """Whether two (tonic, mode) pairs name the same key; None when either tonic is unknown."""
    pa, pb = pitch_class(a[0]), pitch_class(b[0])
    if pa is None or pb is None:
        return None
    return pa == pb and (a[1] or "").lower() == (b[1] or "").lower()


def key_label(tonic: str | None, mode: str | None) -> str | None:
    """ "F# minor" from ("F#", "minor"); None unless both are known."""
    return None if tonic is None or mode is None else f"{tonic} {mode}"


def mirex_score(estimate: str | None, reference: str) -> float:
    """The MIREX key score of an estimate against a reference ("F# minor" strings).

    1 for the same key, 0.5 a fifth away in the same mode, 0.3 the relative key,
    0.2 the parallel key, otherwise 0 (and 0 for no estimate).
    """
    et, em = read_key(estimate)
    rt, rm = parse_key(reference)
    e, r = pitch_class(et), pitch_class(rt)
    if e is None or r is None or em is None:
        return 0.0
    if em == rm:
        return 1.0 if e == r else 0.5 if (e - r) % 12 in (5, 7) else 0.0
    if e == r:
        return 0.2
    relative = (e - r) % 12 == (9 if rm == "major" else 3)
    return 0.3 if relative else 0.0
