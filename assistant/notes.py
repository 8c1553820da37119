"""The one warnings policy: ours reach the person as notes, other libraries' do not.

Our warnings (an untrained model, a text cut to fit, a repaired index) say
something a person can act on. Third-party ones (music21, transformers, ...) are
about those libraries' internals; they go to the debug log.
"""

from __future__ import annotations

import logging
import sys

OUR_PACKAGES = ("musicbert", "catalog", "assistant", "training")


def is_ours(category: type[Warning]) -> bool:
    return category.__module__.split(".")[0] in OUR_PACKAGES


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A ``warnings.showwarning`` that applies the policy (installed by the CLI)."""
    if is_ours(category):
        print(f"musicbert: note: {message}", file=sys.stderr)
    else:
        logging.getLogger("musicbert.warnings").debug(
            "%s:%s: %s: %s", filename, lineno, category.__name__, message
        )
