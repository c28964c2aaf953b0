"""Pool workers that die with their parent, and a pool stop that does not wait for them.

A ``kill -9`` of ``doit build`` used to leave the check stage's workers running for good (300-500
MB each): a process's children are not signalled when it dies. Each worker therefore asks the
kernel for SIGKILL when its parent exits (Linux ``prctl(PR_SET_PDEATHSIG)``), and, on every
platform, watches its parent's pid from a daemon thread (re-parenting changes ``getppid``).
Workers ignore SIGINT (Ctrl-C reaches the whole foreground process group: the parent alone
decides) and take SIGTERM's default action (not a handler inherited through fork).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # linux/prctl.h
WATCH_SECONDS = 0.5


def _set_parent_death_signal() -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(WATCH_SECONDS)
    os._exit(1)  # parent gone: nothing this worker computes can be delivered


def die_with_parent(parent: int) -> None:
    """Pool ``initializer``: tie this worker's life to ``parent`` (``os.getpid()`` of the pool's
    owner, passed through ``initargs``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        _set_parent_death_signal()
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), daemon=True, name="parent-watch").start()


def stop_pool(pool) -> None:
    """Cancel what is queued and terminate this process's worker children now (on an error or
    an interrupt: ``shutdown(wait=True)`` would first finish every queued job)."""
    import multiprocessing

    pool.shutdown(wait=False, cancel_futures=True)
    for child in multiprocessing.active_children():  # this process's only children: the pool's
        child.terminate()
    for child in multiprocessing.active_children():
        child.join(timeout=5)
