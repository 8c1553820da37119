"""``musicbert export RUN/final``: a trained run as a checkpoint the embedder opens.

Thin: the work is ``training.export.export_checkpoint``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a trained run as a MusicBERT checkpoint (default: the packaged one)",
        description="Copy a run's final weights and config into a checkpoint directory, "
        "with checksums, and check that it opens as the embedder opens it.",
    )
    parser.add_argument("source", type=Path, help="a run's final/ directory")
    parser.add_argument(
        "--dest", type=Path, default=None, help="checkpoint directory (default: the packaged)"
    )
    parser.add_argument("--info", type=Path, default=None, help="JSON to record as training_info")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from musicbert.embedder import DEFAULT_CHECKPOINT
    from musicbert.errors import CheckpointError, ConfigError
    from training.export import export_checkpoint

    info = None
    if args.info:
        try:
            info = json.loads(args.info.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{args.info}: unreadable training info ({exc})") from exc
    dest = args.dest or DEFAULT_CHECKPOINT
    try:
        model_id = export_checkpoint(args.source, dest, info)
    except OSError as exc:
        raise CheckpointError(f"cannot export {args.source} to {dest} ({exc})") from exc
    print(f"exported {model_id} to {dest}")
    return 0
