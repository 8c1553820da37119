"""Small text helpers shared by the QA modules: normalising names, formatting facts."""

from __future__ import annotations

import re
import unicodedata

from catalog.queries import duration_text

_NON_WORD = re.compile(r"[^\w#]+", re.UNICODE)
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form used for every name comparison."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    stripped = stripped.replace("'", "").replace("\u2019", "").replace("_", " ")
    return _SPACES.sub(" ", _NON_WORD.sub(" ", stripped.casefold())).strip()


def format_duration(seconds: float | None) -> str:
    """m:ss or h:mm:ss (``catalog.queries.duration_text``), or "unknown length"."""
    return "unknown length" if seconds is None else duration_text(seconds)


def join_names(names: list[str], limit: int = 12, conj: str = "and") -> str:
    """'A, B and C', cut to ``limit`` names with a count of the rest."""
    if not names:
        return "none"
    shown = names[:limit]
    rest = len(names) - len(shown)
    if rest:
        return ", ".join(shown) + f" {conj} {rest} more"
    if len(shown) == 1:
        return shown[0]
    return ", ".join(shown[:-1]) + f" {conj} " + shown[-1]


def percent(p: float) -> str:
    return f"{round(100 * p)}%"
