"""A child process that stops when the process that started it dies.

A worker whose parent is gone has nobody to read its result, stop it, or register
what it found: a ``tune`` trial worker orphaned by a killed parent would otherwise
spend the study's whole remaining budget. Two mechanisms, for every platform:

- Linux: ``prctl(PR_SET_PDEATHSIG)``, so the kernel signals the child the moment its
  parent exits (however it exits);
- everywhere: a watchdog thread that looks at the parent once a second (gone, a
  zombie, or its pid reused by a younger process) and raises the same signal.

The launcher names itself in ``LEPTON_PARENT_PID`` (see ``workers.launch``); a child
started without it watches the parent it has. The signal is SIGTERM, which a job
turns into a clean cancellation.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading

from lepton_desktop.core.processes import alive, start_time

#: Where a launcher puts its own pid for the processes it starts.
PARENT_ENV = "LEPTON_PARENT_PID"
#: Seconds between the watchdog's looks at the parent.
WATCH_EVERY_S = 1.0
#: ``prctl`` option: the signal this process gets when its parent dies (Linux).
_PR_SET_PDEATHSIG = 1


def expected_parent() -> int:
    """The pid of the process that started this one (its launcher's word, else the OS's)."""
    named = os.environ.get(PARENT_ENV, "")
    return int(named) if named.isdigit() else os.getppid()


def die_with_parent(parent: int | None = None, signum: int = signal.SIGTERM) -> None:
    """Get ``signum`` when the parent process dies; if it is already gone, get it now.

    Args:
        parent: the parent's pid (default: :func:`expected_parent`).
        signum: the signal to receive (SIGTERM: a job cancels cleanly).
    """
    parent = expected_parent() if parent is None else parent
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum)
    started_at = start_time(parent)
    if started_at is None:
        signal.raise_signal(signum)  # it died before the watch began
        return
    # POSIX re-parents an orphan (to init or a subreaper): a cheap, exact sign, when
    # the parent named is the real one (not, say, a wrapper's parent).
    direct = os.name == "posix" and os.getppid() == parent
    threading.Thread(
        target=_watch, args=(parent, started_at, signum, direct), name="lifeline", daemon=True
    ).start()


def _watch(parent: int, started_at: float, signum: int, direct: bool) -> None:
    stop = threading.Event()
    while not stop.wait(WATCH_EVERY_S):
        if (direct and os.getppid() != parent) or not alive(parent, started_at):
            signal.raise_signal(signum)
            return
