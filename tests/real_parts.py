"""Real parts (PostgreSQL, FluidSynth, espeak-ng, PortAudio, Rasa, packaged music) in tests.

On a developer's machine a test whose part is missing is skipped with the reason.
Under CI (``CI=true``, set by ``.ci/run``) the install script provides every part, so
a missing one is a broken install: the test fails instead of skipping quietly.
"""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def needs(available: bool, reason: str) -> pytest.MarkDecorator:
    """A marker: skip when the part is missing, except under CI where the test runs (and fails)."""
    return pytest.mark.skipif(not available and not IN_CI, reason=reason)


def require(available: bool, reason: str) -> None:
    """Inside a test or fixture: skip when the part is missing; under CI, fail."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"missing under CI (the install script should provide it): {reason}")
    pytest.skip(reason)
