"""The one way a benchmark writes its results: JSON under its path, folder made, and a
line saying where (``wrote benchmarks/results/<name>.json``).

Every script in ``benchmarks/`` ends this way; it lives here once so that they all
write the same way (``from report import write_results``: the scripts run from this
folder).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def write_results(path: str | Path, results: Any, *, indent: int = 2, **json_options) -> Path:
    """Write ``results`` as JSON to ``path`` (its folder made), say so, return the path.

    ``json_options`` go to ``json.dumps`` (``default=float`` for numpy numbers,
    ``ensure_ascii=False`` to keep non-ASCII text readable).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=indent, **json_options) + "\n", encoding="utf-8")
    shown = path.resolve()
    print(f"wrote {shown.relative_to(ROOT) if shown.is_relative_to(ROOT) else path}")
    return path
