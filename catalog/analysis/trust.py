"""What the benchmark measured about the analysis, shipped with the package.

``benchmarks/analysis.py`` writes ``trust.json`` beside this file: key accuracy (exact and
MIREX-weighted) per confidence band, the confidence below which a key is hedged, and
tempo accuracy (strict and any metrical level). The QA reads its hedges from here, so
they follow the measurement rather than a guess.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

TRUST_FILE = Path(__file__).with_name("trust.json")


@cache
def measured_trust() -> dict:
    """The parsed trust table (read once per process)."""
    return json.loads(TRUST_FILE.read_text())
