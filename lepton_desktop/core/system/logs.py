"""The app's log: a rotating file in the user's log folder, and native crashes beside it.

The GUI calls :func:`start_logging` once at start. Python's ``logging`` records go to
``lepton-desktop.log`` (rotated at :data:`MAX_BYTES`, :data:`BACKUPS` old files kept,
so the folder never grows without bound); :mod:`faulthandler` writes the Python stack
of every thread to ``crash.log`` when the process dies of a native fault (a segfault
in Qt or torch, an abort), which no Python handler could catch.
"""

from __future__ import annotations

import dataclasses
import faulthandler
import logging
import logging.handlers
import sys
from pathlib import Path
from typing import TextIO

LOG_NAME = "lepton-desktop.log"
CRASH_NAME = "crash.log"
MAX_BYTES = 1 << 20
BACKUPS = 5
_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"


@dataclasses.dataclass
class LogFiles:
    """Where this process logs, and what must stay open while it runs.

    Attributes:
        folder: the log folder.
        log: the current log file.
        crash: the file native crashes are written to.
        handler: the rotating handler on the root logger.
        crash_file: kept open for :mod:`faulthandler` (it writes to the descriptor).
    """

    folder: Path
    log: Path
    crash: Path
    handler: logging.Handler
    crash_file: TextIO

    def close(self) -> None:
        """Detach the handler; native crashes go to stderr again (tests; the app just exits)."""
        logging.getLogger().removeHandler(self.handler)
        self.handler.close()
        if sys.__stderr__ is not None:
            faulthandler.enable(file=sys.__stderr__, all_threads=True)
        else:
            faulthandler.disable()
        self.crash_file.close()


def start_logging(folder: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> LogFiles:
    """Log INFO and above to a rotating file in ``folder``; native crashes to ``crash.log``.

    Args:
        folder: the log folder (made, private to the user, if missing).
        max_bytes: the size at which the log is rotated.
        backups: how many rotated files are kept.
    """
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        folder / LOG_NAME, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter(_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    crash_file = (folder / CRASH_NAME).open("a", encoding="utf-8")
    faulthandler.enable(file=crash_file, all_threads=True)
    return LogFiles(folder, folder / LOG_NAME, folder / CRASH_NAME, handler, crash_file)
