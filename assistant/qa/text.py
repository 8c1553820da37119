"""Small text helpers shared by the QA modules: formatting facts and lists of names."""

from __future__ import annotations

from catalog.queries import duration_text


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
