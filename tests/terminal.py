"""Reading a program's output from a pseudo-terminal, as a person would see it.

The chat draws its prompt and toolbar with escape codes. A test
(``tests/test_chat.py``) and a benchmark (``benchmarks/startup.py``) both wait for
text in that output; the waiting is written once, here.
"""

from __future__ import annotations

import os
import re
import select
import time

#: Escape codes (cursor moves, colours, character sets) and carriage returns.
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")


def read_until(fd: int, pattern: bytes | re.Pattern, timeout: float, buffer: bytearray) -> bool:
    """Read ``fd`` into ``buffer`` until ``pattern`` (a bytes regular expression) is found
    in the output without its escape codes; False at the timeout or the end of output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 0.05)[0]:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return False
            if not chunk:
                return False
            buffer.extend(chunk)
            if re.search(pattern, ANSI.sub(b"", bytes(buffer))):
                return True
    return False
