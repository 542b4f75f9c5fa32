"""A child process that stops when the process that started it dies.

A worker whose parent is gone has nobody to read its result, stop it, or register
what it found: a ``tune`` trial worker orphaned by a killed parent would otherwise
spend the study's whole remaining budget. Two mechanisms, for every platform:

- Linux: ``prctl(PR_SET_PDEATHSIG)``, so the kernel signals the child the moment its
  parent exits (however it exits);
- everywhere: a watchdog thread that looks at the parent once a second (gone, a
  zombie, or its pid reused by a younger process) and raises the same signal where
  the kernel did not.

The signal is SIGTERM, which a job turns into a clean cancellation. It is sent once:
a second one could land in the middle of that cleanup. If the process still runs
:data:`STOP_GRACE_S` later (a signal that arrived where an exception was swallowed,
or a non-daemon thread, such as Optuna's trial heartbeat, that keeps the interpreter
from exiting), the watchdog ends it outright; the next opening of the project
recovers its job.

The launcher names itself in ``LEPTON_PARENT_PID`` (see ``core.system.launch``); a child
started without it watches the parent it has.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time

from lepton_desktop.core.processes import alive, start_time

#: Where a launcher puts its own pid for the processes it starts.
PARENT_ENV = "LEPTON_PARENT_PID"
#: Seconds between the watchdog's looks at the parent.
WATCH_EVERY_S = 1.0
#: Seconds an orphan gets to stop cleanly before the watchdog ends it.
STOP_GRACE_S = 10.0
#: The exit status of an orphan the watchdog had to end.
ORPHAN_EXIT = 3
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
    # The kernel's signal follows the real parent only: a named launcher that is not
    # (a wrapper started this process) is left to the watchdog.
    direct = os.name == "posix" and os.getppid() == parent
    by_kernel = direct and _signal_on_parent_death(signum)
    started_at = start_time(parent)
    gone = started_at is None  # before the watch began: no kernel signal will come
    threading.Thread(
        target=_watch,
        args=(parent, started_at, signum, direct, by_kernel or gone),
        name="lifeline",
        daemon=True,
    ).start()
    if gone:
        signal.raise_signal(signum)  # here, on this thread: before anything else runs


def _signal_on_parent_death(signum: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):
        return ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum) == 0
    return False


def _watch(
    parent: int, started_at: float | None, signum: int, direct: bool, signalled: bool
) -> None:
    if started_at is not None:
        while not _gone(parent, started_at, direct):
            time.sleep(WATCH_EVERY_S)
    if not signalled:
        signal.raise_signal(signum)
    time.sleep(STOP_GRACE_S)
    sys.stderr.write(
        f"lepton-desktop: process {parent}, which started this one, is gone and this one "
        f"did not stop within {STOP_GRACE_S:g} s: ending it\n"
    )
    sys.stderr.flush()
    os._exit(ORPHAN_EXIT)


def _gone(parent: int, started_at: float, direct: bool) -> bool:
    # POSIX re-parents an orphan (to init or a subreaper): a cheap, exact sign.
    return (direct and os.getppid() != parent) or not alive(parent, started_at)
