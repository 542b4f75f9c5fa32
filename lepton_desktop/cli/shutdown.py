"""Ending a headless command's process as soon as its work is committed and closed.

After a ``train`` had printed its result, the interpreter spent another 1.1 s (issue 9,
a quiet machine) tearing down torch and numpy module by module, and about 2 s after an
ONNX or bundle export (onnxruntime's own teardown): time the user waits for nothing.
:func:`end_process` skips that teardown (``os._exit``) when nothing is left for it to
do: the output is flushed, no project file is open (an open connection's close, the
last one's WAL checkpoint included, happens only in that teardown), no other thread
or child process is still running, and no profiler, tracer or coverage tool is
waiting to write its report. Otherwise it exits the ordinary way.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import NoReturn

from lepton_desktop.core.store.db import sqlite_files_open


def end_process(code: int) -> NoReturn:
    """Exit with ``code``: at once when :func:`nothing_left_to_close`, else normally."""
    if _flushed() and nothing_left_to_close():
        os._exit(code)
    sys.exit(code)


def _flushed() -> bool:
    # A failed flush (a closed pipe) is left to the ordinary exit, which reports it
    # the way Python always does.
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return False
    return True


def nothing_left_to_close() -> bool:
    """True when skipping the interpreter's shutdown loses nothing (see the module)."""
    # A profiler, tracer or coverage tool writes its report when the interpreter exits.
    if sys.getprofile() is not None or sys.gettrace() is not None or "coverage" in sys.modules:
        return False
    main = threading.main_thread()
    if any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate()):
        return False
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is not None and multiprocessing.active_children():
        return False
    return not sqlite_files_open()
