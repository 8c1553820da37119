"""``musicbert nlu "TEXT" [--json]`` and ``musicbert nlu --file FILE --json``: what the NLU
makes of an utterance (intent, confidence, entities with offsets), for evaluation.

With ``--file`` every line is one utterance and, with ``--json``, every output
line one JSON object. ``--nlu rasa --rasa-url URL`` asks a running Rasa server.
"""

from __future__ import annotations

import json
import sys

#: Utterances parsed together (one text-tower batch series, one intent prediction).
CHUNK = 256


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "nlu",
        help="show the intent and entities the assistant reads in a sentence",
        description="Parse utterances with the assistant's NLU (in process, or a Rasa server).",
    )
    parser.add_argument("text", nargs="*", help="the utterance (omit with --file)")
    parser.add_argument("--file", metavar="FILE", help="one utterance per line ('-' for stdin)")
    parser.add_argument("--json", action="store_true", help="JSON output (one object per line)")
    add_nlu_options(parser)
    parser.set_defaults(func=run)


def add_nlu_options(parser) -> None:
    """``--nlu`` / ``--rasa-url``; other commands (ask, chat) may add the same pair."""
    parser.add_argument(
        "--nlu",
        choices=("in-process", "rasa"),
        default="in-process",
        help="which NLU parses the text (default: in-process)",
    )
    parser.add_argument("--rasa-url", metavar="URL", help="Rasa server for --nlu rasa")


def parse_json(parse) -> dict:
    return {
        "text": parse.text,
        "intent": parse.intent,
        "confidence": round(float(parse.confidence), 4),
        "entities": [
            {
                "entity": e.entity,
                "value": e.value,
                "start": e.start,
                "end": e.end,
                "confidence": e.confidence,
                "extractor": e.extractor,
            }
            for e in parse.entities
        ],
        "ranking": [[name, conf] for name, conf in parse.ranking],
    }


def run(args) -> int:

    from musicbert.errors import ConfigError

    if args.file is None and not args.text:
        raise ConfigError('give a sentence (musicbert nlu "play Nebula") or --file FILE')
    if args.file is not None and args.text:
        raise ConfigError("give either a sentence or --file, not both")
    lines = _lines(args.file) if args.file is not None else [" ".join(args.text)]

    from assistant.nlu import make_nlu

    catalog = embedder = None
    if args.nlu == "in-process":
        from assistant.model_loader import load_embedder
        from catalog.db import open_catalog

        catalog = open_catalog(args.db)
        embedder = load_embedder(args.checkpoint, catalog)
    nlu = make_nlu(args.nlu, args.rasa_url, catalog=catalog, embedder=embedder)
    for start in range(0, len(lines), CHUNK):  # batched, yet printed as it goes
        out = []
        for parse in nlu.parse_many(lines[start : start + CHUNK]):
            if args.json:
                out.append(json.dumps(parse_json(parse), ensure_ascii=False))
            else:
                ents = ", ".join(f"{e.entity}={e.value!r}" for e in parse.entities)
                out.append(f"{parse.intent} ({parse.confidence:.2f}): {ents or 'no entities'}")
        print("\n".join(out), flush=True)
    return 0


def _lines(path: str) -> list[str]:
    from musicbert.errors import ConfigError

    try:
        if path == "-":
            raw = sys.stdin.read()
        else:
            with open(path, encoding="utf-8", errors="replace") as fh:
                raw = fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    return [line for line in raw.splitlines() if line.strip()]
