"""Chat start-up: from typing ``musicbert chat`` to the prompt, in a real pseudo-terminal.

Also measures the first answer (which waits for the background load of the
assistant when the person types at once) and the import cost of what the
prompt needs. Target: prompt in <= 3 s with the demo library.

Usage: .venv/bin/python benchmarks/startup.py [--runs 3] [--db URL]
Writes benchmarks/results/startup.json.
"""

from __future__ import annotations

import argparse
import os
import pty
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from report import write_results  # noqa: E402

from tests.terminal import read_until  # noqa: E402

PROMPT = b"you>"


def one_run(db: str | None) -> dict[str, float | None]:
    cmd = [sys.executable, "-m", "assistant.cli", *(["--db", db] if db else []), "chat"]
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.chdir(ROOT)
        os.execv(cmd[0], cmd)
    t0 = time.perf_counter()
    out = bytearray()
    got_prompt = read_until(fd, PROMPT, 30, out)
    prompt_s = time.perf_counter() - t0 if got_prompt else None
    os.write(fd, b"how many tracks are there\r")
    start = len(out)
    t1 = time.perf_counter()
    # the answer itself ("There are 107 tracks ..."), not the echo of the typed line
    answered = read_until(fd, re.compile(rb"There (are|is) \d+ tracks?"), 300, out)
    answer_s = time.perf_counter() - t1 if answered else None
    os.write(fd, b"\x04")  # Ctrl-D
    read_until(fd, b"bye", 10, out)
    os.waitpid(pid, 0)
    os.close(fd)
    return {"prompt_s": prompt_s, "first_answer_s": answer_s, "reply_bytes": len(out) - start}


def import_cost() -> float:
    """Seconds to import what the prompt needs (the CLI and the chat module)."""
    code = "import time; t=time.perf_counter(); import assistant.cli, assistant.chat; "
    code += "print(time.perf_counter()-t)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    return float(proc.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--db")
    args = parser.parse_args()
    runs = [one_run(args.db) for _ in range(args.runs)]
    prompts = [r["prompt_s"] for r in runs if r["prompt_s"] is not None]
    answers = [r["first_answer_s"] for r in runs if r["first_answer_s"] is not None]
    imports = statistics.median(import_cost() for _ in range(3))
    summary = {
        "runs": runs,
        "prompt_s_median": round(statistics.median(prompts), 3) if prompts else None,
        "prompt_s_max": round(max(prompts), 3) if prompts else None,
        "first_answer_after_prompt_s_median": round(statistics.median(answers), 3)
        if answers
        else None,
        "import_cli_and_chat_s": round(imports, 3),
        "target_prompt_s": 3.0,
    }
    if prompts:
        summary["ratio_prompt_to_target"] = round(statistics.median(prompts) / 3.0, 3)
    print(f"{'metric':40} {'value':>9} {'target':>8}")
    print(f"{'command -> prompt (median)':40} {summary['prompt_s_median']!s:>8}s {'<= 3 s':>8}")
    print(f"{'command -> prompt (max)':40} {summary['prompt_s_max']!s:>8}s")
    first = summary["first_answer_after_prompt_s_median"]
    print(f"{'first answer, typed at once (median)':40} {first!s:>8}s")
    print(f"{'import assistant.cli + assistant.chat':40} {imports:>8.3f}s")
    write_results(ROOT / "benchmarks" / "results" / "startup.json", summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
