"""Where the project keeps its data: one home directory, overridable.

``MUSICBERT_HOME`` wins; otherwise the platform's user data directory. The
catalog database, the vector index, converted weights and caches all live
under it so that removing one directory resets everything.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def home_dir() -> Path:
    """The data directory (created on first use)."""
    env = os.environ.get("MUSICBERT_HOME")
    path = Path(env).expanduser() if env else Path(platformdirs.user_data_dir("musicbert"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir(*parts: str) -> Path:
    """A cache sub-directory of the home (converted weights, rendered audio, ...)."""
    path = home_dir().joinpath("cache", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def shared_dir() -> Path | None:
    """``../shared`` beside the project's root when present (development material)."""
    env = os.environ.get("MUSICBERT_SHARED")
    if env:
        path = Path(env)
        return path if path.is_dir() else None
    path = Path(__file__).resolve().parent.parent.parent / "shared"
    return path if path.is_dir() else None
