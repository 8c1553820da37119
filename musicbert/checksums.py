"""sha256 of weight files, remembered so that a start does not re-hash 90 MB.

A file's hash is cached under its (resolved path, size, mtime) in the home's cache;
touching or replacing the file changes the key, so a stale entry is never used.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from musicbert.errors import CheckpointError
from musicbert.paths import cache_dir

_memory: dict[tuple[str, int, int], str] = {}


def _key(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def _cache_file() -> Path:
    return cache_dir("checksums") / "sha256.json"


def _read_cache() -> dict[str, str]:
    try:
        data = json.loads(_cache_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def file_sha256(path: str | Path) -> str:
    """The file's sha256 (hex), from the cache when its path, size and mtime are unchanged."""
    path = Path(path)
    try:
        key = _key(path)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read weights ({exc.strerror})") from exc
    if key in _memory:
        return _memory[key]
    disk_key = "|".join(map(str, key))
    cached = _read_cache()
    if disk_key in cached:
        _memory[key] = cached[disk_key]
        return cached[disk_key]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    value = digest.hexdigest()
    _memory[key] = value
    cached[disk_key] = value
    tmp = _cache_file().with_suffix(f".{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(cached, indent=0))
        tmp.replace(_cache_file())
    except OSError:
        pass  # an unwritable cache only costs a re-hash next time
    return value


def verify_sha256(path: str | Path, expected: str) -> str:
    """Raise ``CheckpointError`` naming the file unless its sha256 is ``expected``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file is missing")
    actual = file_sha256(path)
    if actual != expected.lower():
        raise CheckpointError(
            f"{path}: sha256 mismatch (expected {expected[:12]}..., got {actual[:12]}...); "
            "the file is corrupted or not the expected model, reinstall it"
        )
    return actual
