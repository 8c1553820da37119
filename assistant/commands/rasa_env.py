"""``musicbert rasa-env``: create (once) or check the Python 3.10 venv holding Rasa.

Thin: the work is ``assistant.rasa_env``.
"""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "rasa-env",
        help="create or check the separate Python 3.10 venv that holds Rasa 3.6",
        description="Create (once) or check the Python 3.10 venv holding Rasa Open Source "
        "3.6, used by --nlu rasa, the Rasa integration test and the DIET benchmark.",
    )
    parser.add_argument("--check", action="store_true", help="only report; install nothing")
    parser.add_argument("--json", action="store_true", help="print a JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from assistant.rasa_env import (
        RASA_VERSION,
        RasaUnavailableError,
        ensure_env,
        existing_env,
        find_python,
        venv_dir,
    )

    env = existing_env() if args.check else ensure_env(quiet=args.json)
    info = {
        "venv": str(venv_dir()),
        "ready": env is not None,
        "rasa": env.version if env else None,
        "python": str(find_python() or ""),
    }
    if args.json:
        print(json.dumps(info))
    if env is None:
        raise RasaUnavailableError(
            f"no ready Rasa {RASA_VERSION} venv at {info['venv']}; "
            "musicbert rasa-env (without --check) creates it"
        )
    if not args.json:
        print(f"Rasa {env.version} ready in {env.root}")
    return 0
