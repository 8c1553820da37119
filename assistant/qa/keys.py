"""Key names: spelling-independent comparison (C# is Db) and display."""

from __future__ import annotations

_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def pitch_class(tonic: str | None) -> int | None:
    """0-11 for a tonic such as "F#", "Gb", "g-" (music21's flat), or None."""
    if not tonic:
        return None
    t = tonic.strip()
    base = _PC.get(t[:1].upper())
    if base is None:
        return None
    shift = 0
    for ch in t[1:]:
        if ch == "#":
            shift += 1
        elif ch in ("b", "-"):
            shift -= 1
        else:
            return None
    return (base + shift) % 12


def same_key(a: tuple[str | None, str | None], b: tuple[str | None, str | None]) -> bool | None:
    """Whether two (tonic, mode) pairs name the same key; None when either is unknown."""
    pa, pb = pitch_class(a[0]), pitch_class(b[0])
    if pa is None or pb is None:
        return None
    return pa == pb and (a[1] or "").lower() == (b[1] or "").lower()


def parse_key_name(text: str | None) -> tuple[str | None, str | None]:
    """ "F# minor" / "f# minor" / "E- major" -> ("F#", "minor")."""
    if not text:
        return None, None
    parts = text.replace("-", "b").split()
    tonic = parts[0][:1].upper() + parts[0][1:] if parts else None
    mode = parts[1].lower() if len(parts) > 1 else None
    return tonic, mode
