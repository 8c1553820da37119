"""A separate Python 3.10 virtual environment holding Rasa Open Source 3.6.

Rasa 3.6 runs on Python 3.8-3.10 and pins TensorFlow 2.12, so it cannot share the
project's Python 3.11 venv. The Rasa bridge, its integration test and the DIET
benchmark use this venv instead: it lives in the user cache, outside the repository
(``${XDG_CACHE_HOME:-~/.cache}/musicbert/rasa-3.6-venv``, about 2.7 GB), is created
once with ``pip install rasa==3.6.21`` and reused afterwards. A marker file written
after a complete install tells a finished venv from one a killed install left
half-built; a file lock keeps two processes from installing at the same time.

``musicbert rasa-env`` creates (or checks) it and prints where it is.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from musicbert.errors import MusicBertError

RASA_VERSION = "3.6.21"
#: Python versions Rasa 3.6 supports; the newest found wins.
SUPPORTED_PYTHONS = ("3.10", "3.9", "3.8")
_MARKER = ".musicbert-rasa-ready"
_PYENV_PYTHON = Path("/root/.pyenv/versions/3.10.13/bin/python")


class RasaUnavailableError(MusicBertError):
    """No Python 3.10 to build the Rasa venv with, or installing Rasa failed."""


@dataclass(frozen=True)
class RasaEnv:
    """A ready Rasa venv: where it is and how to run its programs."""

    root: Path
    version: str

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def rasa(self) -> Path:
        return self.root / "bin" / "rasa"

    def environ(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment Rasa runs in: offline (no telemetry), quiet TensorFlow, one venv."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env.update(
            RASA_TELEMETRY_ENABLED="false",
            TF_CPP_MIN_LOG_LEVEL="2",
            SQLALCHEMY_SILENCE_UBER_WARNING="1",
            PYTHONWARNINGS="ignore",
            VIRTUAL_ENV=str(self.root),
            PATH=f"{self.root / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        )
        env.update(extra or {})
        return env

    def command(self, *args: str) -> list[str]:
        """argv for ``rasa <args>`` in this venv."""
        return [str(self.rasa), *args]


def venv_dir() -> Path:
    """Where the Rasa venv lives (``MUSICBERT_RASA_VENV`` overrides; outside the repo)."""
    override = os.environ.get("MUSICBERT_RASA_VENV")
    if override:
        return Path(override).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "musicbert" / "rasa-3.6-venv"


def _python_version(python: Path | str) -> str | None:
    """'3.10' for a working interpreter, None when it does not run (e.g. a dead pyenv shim)."""
    try:
        out = subprocess.run(
            [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def find_python() -> Path | None:
    """A Python that Rasa 3.6 supports: $MUSICBERT_RASA_PYTHON, pyenv's 3.10.13, pythonX.Y."""
    candidates: list[Path] = []
    override = os.environ.get("MUSICBERT_RASA_PYTHON")
    if override:
        candidates.append(Path(override).expanduser())
    candidates.append(_PYENV_PYTHON)
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    for version in SUPPORTED_PYTHONS:
        candidates.extend(sorted((pyenv_root / "versions").glob(f"{version}.*/bin/python")))
        found = shutil.which(f"python{version}")
        if found:
            candidates.append(Path(found))
    for candidate in candidates:
        if candidate.exists() and _python_version(candidate) in SUPPORTED_PYTHONS:
            return candidate
    return None


def _installed_version(root: Path) -> str | None:
    """Rasa's version in the venv at ``root``; None when absent or broken.

    With the marker a quick metadata read is enough; without it (a venv made by hand, or
    an install that was killed) Rasa must actually import before the venv is trusted.
    """
    python = root / "bin" / "python"
    if not python.exists():
        return None
    if (root / _MARKER).exists():
        code = "import importlib.metadata as m; print(m.version('rasa'))"
    else:
        code = "import rasa, rasa.core.agent, rasa_sdk; print(rasa.__version__)"
    try:
        out = subprocess.run(
            [str(python), "-c", code],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        return None
    if not (root / _MARKER).exists():
        (root / _MARKER).write_text(json.dumps({"rasa": lines[-1], "python": str(python)}))
    return lines[-1]


def existing_env() -> RasaEnv | None:
    """The venv when it is complete and holds the right Rasa; None otherwise (no install)."""
    root = venv_dir()
    version = _installed_version(root)
    return RasaEnv(root, version) if version == RASA_VERSION else None


def _run_logged(argv: Sequence[str], log, quiet: bool) -> None:
    """Run one install step; its output goes to the log (and the terminal unless quiet)."""
    log.write(f"$ {' '.join(argv)}\n")
    log.flush()
    proc = subprocess.Popen(
        list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        log.write(line)
        if not quiet:
            sys.stderr.write(line)
    if proc.wait() != 0:
        log.flush()
        raise RasaUnavailableError(
            f"'{' '.join(argv[:4])} ...' failed (exit {proc.returncode}); see {log.name}"
        )


def ensure_env(quiet: bool = False) -> RasaEnv:
    """The Rasa venv, created on first use (a few minutes, needs PyPI); reused afterwards."""
    ready = existing_env()
    if ready is not None:
        return ready
    python = find_python()
    if python is None:
        raise RasaUnavailableError(
            "no Python 3.10 (or 3.9/3.8) found for Rasa 3.6: install one "
            "(e.g. `pyenv install 3.10.13`) or set MUSICBERT_RASA_PYTHON"
        )
    root = venv_dir()
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be installing right now
        ready = existing_env()
        if ready is not None:
            return ready
        if root.exists():  # half-built or wrong version: start over
            shutil.rmtree(root)
        log_path = root.parent / f"{root.name}-install.log"
        with open(log_path, "w") as log:
            if not quiet:
                print(f"creating the Rasa {RASA_VERSION} venv in {root} ...", file=sys.stderr)
            _run_logged([str(python), "-m", "venv", str(root)], log, quiet)
            pip = [str(root / "bin" / "python"), "-m", "pip", "install", "--no-input"]
            if quiet:
                pip.append("--progress-bar=off")
            _run_logged([*pip, "--upgrade", "pip", "setuptools<70", "wheel"], log, quiet)
            _run_logged([*pip, f"rasa=={RASA_VERSION}"], log, quiet)
        version = _installed_version(root)
        if version != RASA_VERSION:
            raise RasaUnavailableError(
                f"the Rasa venv in {root} holds rasa {version}, not {RASA_VERSION}; see {log_path}"
            )
        return RasaEnv(root, version)
