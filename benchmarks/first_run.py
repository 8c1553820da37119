"""First run as a newcomer has it: ``musicbert chat --demo`` on a fresh MUSICBERT_HOME.

In a real pseudo-terminal: the time to the prompt, to the first search answer that
lists tracks (asked again every few seconds while the library is still empty), and,
after leaving the chat (which leaves the background build running), to the whole
demo library being ready (the build's completion marker). Targets on 2 quiet cores:
prompt <= 15 s, first answer <= 120 s, whole demo <= 10 min.

Usage: .venv/bin/python benchmarks/first_run.py [--home DIR] [--query TEXT]
Writes benchmarks/results/first_run.json. The home is a new temporary folder unless
given (a given one must not hold a catalog yet).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import select
import struct
import sys
import tempfile
import termios
import time
from pathlib import Path

from report import write_results

ROOT = Path(__file__).resolve().parent.parent
PROMPT = re.compile(rb"you>")
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")
#: A reply listing tracks: a first numbered row holding a duration (m:ss).
ROW = re.compile(r"^\s*1\s+\S.*\b\d+:\d\d\b", re.MULTILINE)
REPLY_END = re.compile(
    rb"still growing\)|complete now|sorry: |^\s*1\s+\S.*\b\d+:\d\d\b", re.MULTILINE
)
READY = re.compile(r"(\d+) of (\d+) tracks? ready")
TARGETS = {"prompt_s": 15.0, "first_answer_s": 120.0, "demo_ready_s": 600.0}


class Terminal:
    """The chat's pseudo-terminal: everything it printed so far, escape codes removed."""

    def __init__(self, fd: int):
        self.fd, self.raw = fd, bytearray()

    def text(self, start: int = 0) -> str:
        return ANSI.sub(b"", bytes(self.raw[start:])).decode(errors="replace")

    def pump(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if select.select([self.fd], [], [], 0.05)[0]:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                self.raw.extend(chunk)
                if b"\x1b[6n" in chunk:  # answer the cursor-position request, as a terminal
                    os.write(self.fd, b"\x1b[1;1R")  # does: the toolbar is drawn after it

    def wait(self, pattern: re.Pattern, start: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump(0.1)
            if pattern.search(ANSI.sub(b"", bytes(self.raw[start:]))):
                return True
        return False


def run(home: Path, query: str, budget_s: float) -> dict:
    env = dict(os.environ, MUSICBERT_HOME=str(home))
    env.pop("MUSICBERT_DB", None)
    cmd = [sys.executable, "-m", "assistant.cli", "chat", "--demo", "--no-sound"]
    load_start = os.getloadavg()
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(ROOT)
        os.execve(cmd[0], cmd, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    t0 = time.monotonic()
    term = Terminal(fd)
    out: dict = {"home": str(home), "query": query, "load_average_start": load_start}
    out["prompt_s"] = round(time.monotonic() - t0, 2) if term.wait(PROMPT, 0, 120) else None
    print(f"prompt after {out['prompt_s']} s", flush=True)
    attempts, answer = 0, None
    while out["prompt_s"] is not None and time.monotonic() - t0 < budget_s:
        start = len(term.raw)
        os.write(fd, query.encode() + b"\r")
        attempts += 1
        # the reply is complete when its note on the growing library is printed (or, once
        # the library is complete, when it lists tracks)
        if not term.wait(REPLY_END, start, 300):
            break
        reply = term.text(start)
        out.setdefault("first_reply_s", round(time.monotonic() - t0, 2))
        out.setdefault("first_reply_text", reply[-600:])
        if ROW.search(reply):
            answer = reply
            out["first_answer_s"] = round(time.monotonic() - t0, 2)
            print(f"first answer listing tracks after {out['first_answer_s']} s", flush=True)
            break
        term.pump(5)
    out["answer_attempts"] = attempts
    if answer is not None:
        ready = READY.search(answer)
        out["first_answer_ready"] = [int(ready[1]), int(ready[2])] if ready else None
        out["first_answer_text"] = answer[-1500:]
    toolbars = re.findall(r"library: [^|]*", term.text())
    out["toolbar_seen"] = toolbars[-1].strip() if toolbars else None
    os.write(fd, b"\x04")  # leave: the build goes on in the background
    term.wait(re.compile(rb"bye"), 0, 60)
    while not os.waitpid(pid, os.WNOHANG)[0]:  # keep reading: a full terminal blocks it
        term.pump(0.2)
    os.close(fd)
    out["left_chat_s"] = round(time.monotonic() - t0, 2)
    print(f"left the chat after {out['left_chat_s']} s; waiting for the demo build", flush=True)
    out["demo_ready_s"] = wait_for_demo(home, t0, budget_s)
    out["load_average_end"] = os.getloadavg()
    out["log_tail"] = _tail(home)
    return out


def wait_for_demo(home: Path, t0: float, budget_s: float) -> float | None:
    """Seconds from the command to the build's completion marker (None: not in budget)."""
    os.environ["MUSICBERT_HOME"] = str(home)
    sys.path.insert(0, str(ROOT))
    from catalog.db import open_catalog
    from catalog.demo import demo_marker
    from catalog.ingest_progress import running_ingest

    catalog = open_catalog(None)
    marker = demo_marker(catalog)
    quiet_since = None
    while time.monotonic() - t0 < budget_s:
        if marker is not None and marker.is_file():
            return round(time.monotonic() - t0, 2)
        if running_ingest(catalog) is None:  # no build running and no marker: it failed?
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 60:
                return None
        else:
            quiet_since = None
        time.sleep(1)
    return None


def _tail(home: Path) -> str:
    logs = sorted(home.glob("*.demo.log"))
    return logs[0].read_text(errors="replace")[-2000:] if logs else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path)
    parser.add_argument("--query", default="find some calm piano music")
    parser.add_argument("--budget", type=float, default=1800, help="seconds to wait in all")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="mb-first-run-"))
    home.mkdir(parents=True, exist_ok=True)
    if any(home.glob("*.db")):
        parser.error(f"{home} already holds a catalog; the benchmark needs a fresh home")
    result = run(home, args.query, args.budget)
    result["targets"] = TARGETS
    print(f"{'step':34} {'seconds':>8} {'target':>8}")
    for name, label in (
        ("prompt_s", "command -> prompt"),
        ("first_answer_s", "command -> first search answer"),
        ("demo_ready_s", "command -> whole demo ready"),
    ):
        value = result.get(name)
        shown = f"{value:8.1f}" if value is not None else "     n/a"
        print(f"{label:34} {shown} {TARGETS[name]:8.0f}")
    print(f"first answer over: {result.get('first_answer_ready')} (ready, expected)")
    print(f"toolbar seen: {result.get('toolbar_seen')}")
    print(f"load average at start {result['load_average_start']}, end {result['load_average_end']}")
    write_results(ROOT / "benchmarks" / "results" / "first_run.json", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
