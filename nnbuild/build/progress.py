"""Progress of a long loop: a bar on a terminal, a few plain lines otherwise.

The stages use it through ``StageContext.progress`` (lines prefixed ``stage:recipe:``), commands
such as ``nnbuild suggest-hp`` directly. Plain lines come at most every ``every`` seconds, plus
the last one, so a log file or CI output stays short.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, Iterable, Iterator


def _stderr_line(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def progress(iterable: Iterable, total: int | None = None, label: str = "",
             log: Callable[[str], None] = _stderr_line, every: float = 5.0) -> Iterator:
    """Yield the items of ``iterable``, showing how far the loop is.

    Args:
        iterable: the work items.
        total: how many there are (``len(iterable)`` when it has one).
        label: what the loop does (``check``, ``suggest-hp: ranking layers``).
        log: where plain lines go when stderr is not a terminal.
        every: seconds between plain lines.
    """
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)
    tty = sys.stderr.isatty()
    start, last_log, count = time.monotonic(), float("-inf"), 0  # the first item: a line
    for count, item in enumerate(iterable, 1):
        yield item
        now = time.monotonic()
        if tty:
            sys.stderr.write("\r" + bar(label, count, total, now - start))
            sys.stderr.flush()
        elif now - last_log >= every or count == total:
            last_log = now
            log(f"{label}: {count}/{total or '?'} ({now - start:.1f} s)")
    if tty and count:
        sys.stderr.write("\n")


def bar(label: str, done: int, total: int | None, seconds: float, width: int = 30) -> str:
    """One terminal line: ``label: [####....] done/total (seconds)``."""
    if not total:
        return f"{label}: {done} ({seconds:.1f} s)"
    filled = int(width * done / total)
    return f"{label}: [{'#' * filled}{'.' * (width - filled)}] {done}/{total} ({seconds:.1f} s)"
