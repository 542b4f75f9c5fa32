"""Who a process is (its pid and start time, whether it still runs), and its children.

A pid alone names a process only while it lives: the operating system hands the
number to a new process later. A pid with the process's start time names it for good,
so a row that records both can tell its dead owner from a stranger that got the pid.

:func:`isolate_children` keeps the Python processes this one starts from importing
code out of their working folder.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

import psutil

#: Start times (seconds) within this much of each other are the same process's.
SAME_START_S = 1.0

_me: tuple[int, float | None] | None = None


def start_time(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), or None if it is gone or a zombie."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process.create_time()
    except psutil.Error:
        return None


def this_process() -> tuple[int, float | None]:
    """``(pid, start time)`` of the calling process (looked up once per process)."""
    global _me
    pid = os.getpid()
    if _me is None or _me[0] != pid:  # (a forked child is another process)
        _me = (pid, start_time(pid))
    return _me


def alive(pid: int | None, started_at: float | None = None) -> bool:
    """Whether process ``pid`` runs (and, with ``started_at``, is the one that started then)."""
    if pid is None:
        return False
    if pid == os.getpid():
        return True
    began = start_time(pid)
    if began is None:
        return False
    return started_at is None or abs(began - started_at) < SAME_START_S


#: Python 3.11+: an interpreter with this variable set runs as with ``-P``.
SAFE_PATH_ENV = "PYTHONSAFEPATH"


def isolate_children() -> None:
    """Python processes started from now on never put their working folder on sys.path.

    ``multiprocessing``'s spawned children (the server processes of ``serve``) and
    its resource tracker start as ``python -c ...`` in this process's working folder,
    with this interpreter's flags: run from the console script (no ``-P``), they would
    import a ``multiprocessing.py`` or ``json.py`` that sits in the user's folder.
    ``PYTHONSAFEPATH`` is ``-P`` for every interpreter that inherits the environment.
    """
    os.environ[SAFE_PATH_ENV] = "1"


def lower_thread_priority(niceness: int = 5) -> None:
    """Make the calling thread yield the CPU to the rest of the process under load.

    Linux schedules threads on their own, so one thread can be made "nicer" than its
    process (a GUI's database thread, a server's journal shipper); elsewhere this does
    nothing.
    """
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


def lower_process_priority() -> None:
    """Make this whole process yield the CPU to others under load (a helper process
    beside the real work); a lower priority is a courtesy, so failing is silent."""
    try:
        me = psutil.Process()
        if os.name == "nt":
            me.nice(psutil.BELOW_NORMAL_PRIORITY_CLASS)
        else:
            me.nice(10)
    except (psutil.Error, OSError):
        pass
