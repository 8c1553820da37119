"""Where the project keeps its data: one home directory, overridable.

``MUSICBERT_HOME`` wins; otherwise the platform's user data directory. The
catalog database, the vector index, converted weights and caches all live
under it so that removing one directory resets everything.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import platformdirs

from musicbert.errors import ConfigError


def home_dir() -> Path:
    """The data directory (created on first use).

    Raises ``ConfigError`` when it cannot be: ``MUSICBERT_HOME`` names a file, or a
    folder that cannot be created.
    """
    env = os.environ.get("MUSICBERT_HOME")
    path = Path(env).expanduser() if env else Path(platformdirs.user_data_dir("musicbert"))
    where = f"MUSICBERT_HOME={env}" if env else f"the data folder {path}"
    if path.exists() and not path.is_dir():
        raise ConfigError(
            f"{where} is a file, not a folder; point MUSICBERT_HOME at a folder "
            "(it is created if missing)"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        reason = f"{blocker} is a file" if blocker else (exc.strerror or str(exc))
        raise ConfigError(
            f"cannot create {where} ({reason}); point MUSICBERT_HOME at a folder you can write"
        ) from exc
    return path


def cache_dir(*parts: str) -> Path:
    """A cache sub-directory of the home (converted weights, rendered audio, ...).

    When the home cannot be written (a read-only library), caches go to a folder of
    this user's under the system's temporary directory instead, so that reading
    commands still work.
    """
    home = home_dir()
    path = home.joinpath("cache", *parts)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass
    if path.is_dir() and os.access(path, os.W_OK):
        return path
    fallback = Path(tempfile.gettempdir(), f"musicbert-cache-{os.getuid()}", *parts)
    try:
        fallback.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot write a cache folder: {path} is read-only and {fallback} cannot be "
            f"created ({exc.strerror or exc}); point MUSICBERT_HOME at a writable folder"
        ) from exc
    return fallback


def shared_dir() -> Path | None:
    """``../shared`` beside the project's root when present (development material)."""
    env = os.environ.get("MUSICBERT_SHARED")
    if env:
        path = Path(env)
        return path if path.is_dir() else None
    path = Path(__file__).resolve().parent.parent.parent / "shared"
    return path if path.is_dir() else None
