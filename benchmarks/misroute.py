"""Misroute benchmark: requests in new wordings, each with the intent (or group) it must get.

Usage: .venv/bin/python benchmarks/misroute.py [--db URL] [--replies]

Reads ``benchmarks/misroute_set.yml`` (see its header), parses every text with the
in-process NLU over the catalog (default: $MUSICBERT_HOME, e.g. the demo library),
and counts an item right when the intent is the expected one (or in the expected
group) and the named entities are present / absent as listed. ``--replies`` also
runs each text as a fresh conversation's first turn and checks the answer against
the item's ``reply`` regex. Prints the failures and a summary; writes
``benchmarks/results/misroute.json``.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from pathlib import Path

import yaml
from report import write_results

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.nlu.description import REQUEST_INTENTS  # noqa: E402
from assistant.qa.questions import QA_INTENTS  # noqa: E402

SET = Path(__file__).resolve().parent / "misroute_set.yml"
RESULTS = Path(__file__).resolve().parent / "results"
GROUPS = {"request": set(REQUEST_INTENTS), "question": set(QA_INTENTS)}


def load_set(path: Path = SET) -> list[dict]:
    return yaml.safe_load(path.read_text())


def check_parse(item: dict, parse) -> list[str]:
    """What is wrong with a parse of ``item`` (empty when right)."""
    problems = []
    expect = item.get("expect")
    if expect is not None:
        allowed = GROUPS.get(expect, {expect})
        if parse.intent not in allowed:
            problems.append(f"intent {parse.intent} (want {expect})")
    found = {(e.entity, e.value.lower()) for e in parse.entities}
    for kind, value in (item.get("entities") or {}).items():
        if (kind, str(value).lower()) not in found:
            problems.append(f"no {kind}={value!r}")
    for kind in item.get("no_entities") or []:
        if any(e.entity == kind for e in parse.entities):
            problems.append(f"unwanted {kind}={parse.first(kind)!r}")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", help="catalog URL (default: $MUSICBERT_DB / $MUSICBERT_HOME)")
    ap.add_argument("--replies", action="store_true", help="also check the answers")
    ap.add_argument("--set", type=Path, default=SET)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    from assistant.dialogue import Assistant

    items = load_set(args.set)
    assistant = Assistant.from_defaults(db_url=args.db)
    parses = assistant.nlu.parse_many([it["text"] for it in items])
    right = 0
    failures = []
    reply_right = reply_total = 0
    for item, parse in zip(items, parses, strict=True):
        problems = check_parse(item, parse)
        if args.replies and item.get("reply"):
            reply_total += 1
            assistant.state.__init__()  # a fresh conversation per item
            reply = assistant.respond(parse)
            if re.search(item["reply"], reply.text):
                reply_right += 1
            else:
                problems.append(f"reply {reply.text.splitlines()[0][:90]!r}")
        if problems:
            failures.append({"text": item["text"], "problems": problems})
            print(f"FAIL {item['text']!r}: {'; '.join(problems)}")
        else:
            right += 1
    summary = {
        "benchmark": "misroute",
        "items": len(items),
        "right": right,
        "accuracy": round(right / len(items), 4),
        "replies_checked": reply_total,
        "replies_right": reply_right,
        "failures": failures,
    }
    print(f"\n{right}/{len(items)} items right ({summary['accuracy']:.1%})", end="")
    print(f"; replies {reply_right}/{reply_total}" if args.replies else "")
    write_results(RESULTS / "misroute.json", summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
