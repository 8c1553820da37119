"""The ``musicbert`` command: parse arguments, hand over to a command module, print.

Each subcommand lives in ``assistant/commands/<name>.py`` with two functions:
``register(subparsers)`` adds its parser, and the ``func`` it sets does the work
by calling library code. Command modules import heavy libraries (torch, faiss)
inside their functions so that ``musicbert --help`` and the chat start fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import warnings

import assistant.commands
from assistant.notes import show_warning
from musicbert.errors import MusicBertError


def command_modules() -> list[str]:
    """Every module in ``assistant.commands``; each registers one or more subcommands."""
    return sorted(m.name for m in pkgutil.iter_modules(assistant.commands.__path__))


#: Options every command takes, before or after its name: (flags, keyword arguments).
GLOBAL_OPTIONS = (
    (
        ("--db",),
        dict(
            metavar="URL",
            help="SQLAlchemy database URL (default: $MUSICBERT_DB or SQLite in $MUSICBERT_HOME)",
        ),
    ),
    (
        ("--checkpoint",),
        dict(
            metavar="DIR",
            help="MusicBERT checkpoint folder (default: the one the library was embedded "
            "with, else the packaged one)",
        ),
    ),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="musicbert",
        description="A local, offline conversational assistant over your music library.",
    )
    for flags, options in GLOBAL_OPTIONS:
        parser.add_argument(*flags, **options)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in command_modules():
        importlib.import_module(f"assistant.commands.{name}").register(sub)
    for command in sub.choices.values():  # "musicbert chat --db X" works too
        for flags, options in GLOBAL_OPTIONS:
            command.add_argument(*flags, **options, default=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    warnings.showwarning = show_warning
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except MusicBertError as exc:
        print(f"musicbert: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
