"""``musicbert ask "TEXT" [--json]``: one turn of the conversation, for scripts.

The text goes through the same ``Assistant.handle`` as the chat (intent,
entities, action, answer). ``--json`` prints ``Reply.to_json()``: intent,
entities, answer text, tracks and the structured facts.
"""

from __future__ import annotations

import json
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "ask",
        help="one turn: ask or tell the assistant something, print the answer",
        description=(
            "Handle one utterance exactly as the chat would (find, recommend, answer a "
            "question about the library, explain a concept) and print the answer; with "
            "--json, the intent, entities, answer text and tracks."
        ),
    )
    parser.add_argument("text", nargs="+", help="what you would type, e.g. 'play battle music'")
    parser.add_argument("--json", action="store_true", help="print the reply as JSON")
    parser.set_defaults(func=run)


def run(args) -> int:
    from assistant.dialogue import Assistant
    from assistant.render import reply_text

    assistant = Assistant.from_defaults(db_url=args.db, checkpoint=args.checkpoint, player=None)
    for notice in repair_notices(assistant):
        print(f"musicbert: {notice}", file=sys.stderr)
    reply = assistant.handle(" ".join(args.text))
    if args.json:
        print(json.dumps(reply.to_json(), indent=2, default=str, ensure_ascii=False))
    else:
        print(reply_text(reply))
    return 0


def repair_notices(assistant) -> list[str]:
    """What the search index repaired at open (a damaged or deleted index), to say once."""
    from catalog.vector_index import REPAIRED

    search = getattr(assistant, "search", None)
    notices = getattr(search, "notices", None) or []
    return [n for n in notices if isinstance(n, str) and n.startswith(REPAIRED)]
