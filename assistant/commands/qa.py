"""``musicbert qa "QUESTION"``: one music question answered by the QA engine alone.

Thin: ``assistant.qa.QAEngine.ask`` does the work (through the dialogue NLU with
``--nlu``, else by reading the question directly). ``musicbert ask`` runs a whole
dialogue turn; this command is the QA layer by itself, for checking answers.
"""

from __future__ import annotations

import json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "qa",
        help="answer a question about your music with the QA engine alone",
        description=(
            "Answer one question from the library: who/what/when facts, tempo, key and "
            "loudness from the analysis, what a track sounds like, counts and superlatives, "
            "comparisons, score facts for rendered pieces, and music concepts. Says "
            '"I don\'t know" and why when the data cannot answer (exit status 1).'
        ),
    )
    parser.add_argument("question", nargs="+", help="the question, e.g. 'what key is Nebula in?'")
    parser.add_argument("--json", action="store_true", help="print the reply and its facts")
    parser.add_argument("--nlu", action="store_true", help="parse with the dialogue NLU first")
    parser.add_argument(
        "--no-embedder", action="store_true", help="skip MusicBERT (no zero-shot content)"
    )
    parser.set_defaults(func=run)


def run(args) -> int:

    from assistant.qa import QAEngine
    from catalog.db import open_catalog

    catalog = open_catalog(args.db)
    embedder = nlu = None
    if not args.no_embedder:
        from assistant.model_loader import load_embedder

        embedder = load_embedder(args.checkpoint, catalog)
    if args.nlu:
        from assistant.nlu import NLU

        nlu = NLU.load(catalog=catalog, embedder=embedder)
    reply = QAEngine(catalog, embedder=embedder, nlu=nlu).ask(" ".join(args.question))
    if args.json:
        print(json.dumps(reply.to_json(), indent=2, default=str, ensure_ascii=False))
    else:
        print(reply.text)
    return 0 if reply.data.get("known", True) else 1
