"""``musicbert tag-trust``: from which confidence each musicnn tag may be shown to people.

Thin: the work is ``training.tag_trust.write_thresholds``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "tag-trust",
        help="measure tag false alarms on the real-music dev set (musicbert/tag_trust.json)",
        description="Write the confidence from which each genre tag can be believed, "
        "measured on a feature cache's real-music dev clips.",
    )
    parser.add_argument("--cache", type=Path, required=True, help="feature cache directory")
    parser.add_argument(
        "--out", type=Path, default=None, help="thresholds file (default: the packaged one)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from training.tag_trust import FLOOR, TRUST_FILE, write_thresholds

    raised = write_thresholds(args.cache, args.out or TRUST_FILE)
    print(f"{len(raised)} tags need more than {FLOOR}: {raised}")
    return 0
