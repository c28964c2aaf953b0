"""Ctrl-C and SIGTERM of a build: unwind like an exception, exit 130 / 143 with one line.

Without this, SIGINT surfaced as a KeyboardInterrupt traceback from deep inside doit, and SIGTERM
killed the process with no cleanup. ``sigterm_raises()`` turns SIGTERM into ``Terminated`` (a
``KeyboardInterrupt``, so doit's runner treats both alike and terminates its own children); the
unwinding runs the stage runner's cleanup (a failed run's work directory is removed, no cache
entry is written) and the check stage's pool stop.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from typing import Iterator


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: unwind as for Ctrl-C, but exit 143."""


def _raise_terminated(signum, frame) -> None:
    del signum, frame
    raise Terminated()


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises ``Terminated`` in the main thread."""
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_status(err: KeyboardInterrupt, prog: str) -> int:
    """Print ``<prog>: interrupted (...)`` and return 143 for SIGTERM, 130 for Ctrl-C."""
    if isinstance(err, Terminated):
        print(f"{prog}: stopped by SIGTERM; finished stages are cached, the stopped one is "
              "not", file=sys.stderr)
        return 128 + signal.SIGTERM
    print(f"{prog}: interrupted; finished stages are cached, the interrupted one is not",
          file=sys.stderr)
    return 128 + signal.SIGINT
