"""``musicbert embed``: the MusicBERT vector of a text or an audio file.

Thin: parse, call ``musicbert.embedder.Embedder``, print a summary (or the whole
vector with ``--json``). Heavy imports happen inside ``run``.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "embed",
        help="embed a text or an audio file with MusicBERT",
        description="Print the MusicBERT shared-space vector of a text or an audio file.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="text to embed")
    source.add_argument("--audio", metavar="FILE", help="audio file to embed (whole track)")
    parser.add_argument("--tags", type=int, default=5, help="musicnn tags to show for audio")
    parser.add_argument("--json", action="store_true", help="print JSON with the full vector")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from assistant.model_loader import load_embedder
    from musicbert.embedder import UntrainedModelWarning
    from musicbert.text_tower import TextTruncatedWarning

    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UntrainedModelWarning)
        warnings.simplefilter("always", TextTruncatedWarning)
        embedder = load_embedder(args.checkpoint)
        result: dict = {
            "model_id": embedder.model_id,
            "dim": embedder.dim,
            "untrained": embedder.untrained,
        }
        if args.text is not None:
            vector = embedder.embed_text([args.text])[0]
            result.update(input="text", truncated=embedder.last_truncated[0])
        else:
            desc = embedder.describe(args.audio)
            vector = desc.embedding
            result.update(
                input="audio",
                path=args.audio,
                duration=round(desc.duration, 3),
                patches=desc.patches,
                silent=desc.silent,
                tags=[
                    {
                        "name": t.name,
                        "kind": t.kind,
                        "confidence": round(t.confidence, 4),
                        "source": t.source,
                    }
                    for t in desc.top_tags(args.tags)
                ],
            )
    for warning in caught:
        if issubclass(warning.category, (UntrainedModelWarning, TextTruncatedWarning)):
            notes.append(str(warning.message))
        else:
            warnings.showwarning(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    for note in notes:
        print(f"musicbert: note: {note}", file=sys.stderr)
    if args.json:
        result["vector"] = [round(float(v), 6) for v in vector]
        print(json.dumps(result))
        return 0
    print(f"model     {result['model_id']}{'  (UNTRAINED)' if result['untrained'] else ''}")
    print(f"input     {result['input']}" + (f"  {args.audio}" if args.audio else ""))
    if args.audio:
        print(
            f"duration  {result['duration']:.1f} s, {result['patches']} patches"
            + ("  (silent)" if result["silent"] else "")
        )
        for tag in result["tags"]:
            print(
                f"tag       {tag['name']:<20} {tag['confidence']:.3f}  {tag['kind']}"
                f"  ({tag['source']})"
            )
    elif result["truncated"]:
        print("truncated yes (text longer than 256 tokens)")
    head = " ".join(f"{v:+.4f}" for v in vector[:8])
    print(f"vector    dim {result['dim']}, norm {float((vector**2).sum() ** 0.5):.4f}: {head} ...")
    return 0
