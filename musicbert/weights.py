"""musicnn's weights: found in the installed wheel, hash-pinned, cached as safetensors.

The musicnn 0.1.0 wheel is installed only for its files; importing it would
pull in TensorFlow, so its folder is located through the import system's
metadata without executing it. The TF bundle is read once (sha256-checked
against the pins below, so a tampered or truncated file is refused by name),
its model variables are written to ``cache_dir("musicnn")/<model>.safetensors``
and later loads read that file, re-checked against the hash recorded beside
it. A damaged cache is rebuilt from the wheel.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from musicbert.errors import CheckpointError
from musicbert.paths import cache_dir
from musicbert.tf_checkpoint import is_model_variable, read_checkpoint

MODEL_NAMES = ("MSD_musicnn", "MTT_musicnn")
DATA_FILE = ".data-00000-of-00001"
INDEX_FILE = ".index"

# sha256 of the checkpoint files shipped in the musicnn 0.1.0 wheel.
PINNED_SHA256: dict[str, dict[str, str]] = {
    "MSD_musicnn": {
        INDEX_FILE: "87f3e0f3550c8d3bafc840374003e5c8af5eeb5ecf6add61af09a7822d3282c8",
        DATA_FILE: "8579734ee6388f799ed0def4bbd0d1fdcbeaf213ef2a9dc860917bd76a303de6",
    },
    "MTT_musicnn": {
        INDEX_FILE: "da2d7bb670b2b31e9bc441bb1bd75eca31b5b061f963cc1f9630c1aff3238f57",
        DATA_FILE: "041f3935e981a65cea739842d30c188d3a7d2adf4410955c8668eb3de4a5acab",
    },
}
CACHE_FORMAT = "musicnn-tf-variables/1"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_name(name: str) -> None:
    if name not in PINNED_SHA256:
        raise CheckpointError(
            f"unknown musicnn model {name!r}; choose one of {', '.join(MODEL_NAMES)}"
        )


def musicnn_package_dir() -> Path:
    """The installed ``musicnn`` package folder, found without importing it."""
    override = os.environ.get("MUSICBERT_MUSICNN_DIR")
    if override:
        return Path(override)
    try:
        spec = importlib.util.find_spec("musicnn")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    try:
        return Path(str(importlib.metadata.distribution("musicnn").locate_file("musicnn")))
    except importlib.metadata.PackageNotFoundError as exc:
        raise CheckpointError(
            "musicnn weights not found: install the wheel's files with "
            "`pip install --no-deps musicnn==0.1.0`"
        ) from exc


def checkpoint_dir(name: str) -> Path:
    """The folder holding the TF bundle of ``name`` inside the musicnn wheel."""
    _check_name(name)
    return musicnn_package_dir() / name


def verify_source(name: str, folder: Path | None = None) -> Path:
    """Check both bundle files against the pins; returns the folder."""
    _check_name(name)
    folder = checkpoint_dir(name) if folder is None else Path(folder)
    for filename, expected in PINNED_SHA256[name].items():
        path = folder / filename
        if not path.is_file():
            raise CheckpointError(
                f"{name}: checkpoint file missing: {path} "
                "(reinstall with `pip install --no-deps --force-reinstall musicnn==0.1.0`)"
            )
        actual = sha256_file(path)
        if actual != expected:
            raise CheckpointError(
                f"{name}: checkpoint file {path} has sha256 {actual[:16]}..., "
                f"expected {expected[:16]}... (corrupted or a different release)"
            )
    return folder


def cache_path(name: str) -> Path:
    _check_name(name)
    return cache_dir("musicnn") / f"{name}.safetensors"


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _read_cache(name: str) -> dict[str, np.ndarray] | None:
    """The cached tensors when the cache file matches its recorded hash, else None."""
    path = cache_path(name)
    side = _sidecar(path)
    if not path.is_file() or not side.is_file():
        return None
    try:
        meta = json.loads(side.read_text())
        if meta.get("format") != CACHE_FORMAT or meta.get("source") != PINNED_SHA256[name]:
            return None
        if sha256_file(path) != meta.get("sha256"):
            return None
        return load_file(str(path))
    except (OSError, ValueError, json.JSONDecodeError):
        return None


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def convert(name: str, source: Path | None = None) -> dict[str, np.ndarray]:
    """Read the pinned TF bundle; write its model variables to the safetensors cache.

    Returns the tensors. A cache that cannot be written (read-only home, full
    disk) only costs the next load another conversion, so it is a warning.
    """
    folder = verify_source(name, source)
    tensors = read_checkpoint(folder, only=is_model_variable)
    if not tensors:
        raise CheckpointError(f"{name}: checkpoint in {folder} holds no model variables")
    path = cache_path(name)
    metadata = {"format": CACHE_FORMAT, "model": name}
    try:
        _atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
        side = {"format": CACHE_FORMAT, "sha256": sha256_file(path), "source": PINNED_SHA256[name]}
        _atomic_write(_sidecar(path), lambda tmp: tmp.write_text(json.dumps(side, indent=1)))
    except OSError as exc:
        warnings.warn(f"{name}: could not cache converted weights in {path}: {exc}", stacklevel=2)
    return tensors


def load_tf_variables(name: str) -> dict[str, np.ndarray]:
    """The TF model variables of ``name`` (e.g. ``conv2d/kernel``), via the verified cache.

    A missing, stale or damaged cache file is rebuilt from the pinned wheel files.
    """
    tensors = _read_cache(name)
    return tensors if tensors is not None else convert(name)
