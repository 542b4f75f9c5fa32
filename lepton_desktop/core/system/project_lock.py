"""Who edits a project: an advisory lock held by the one app process that has it open.

SQLite lets many processes write one file, and the app's own workers, servers and
the command line do so all the time (each in short transactions). Two *apps* on one
project would each run its jobs, recover the other's "stale" jobs and undo each
other's choices, so the GUI takes this lock when it opens a project and a second app
that cannot get it opens the project read-only and says who has it.

The lock is ``flock`` (``msvcrt.locking`` on Windows) on a file beside the project,
``NAME.lepton-lock``, holding the holder's pid, host and start time as JSON. The
kernel releases it when the holder dies, however it dies; a clean release removes the
file. It never touches SQLite's own locks (those are on the project file itself).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path

#: Suffix of the lock file, after the project's name (``demo.lepton-lock``).
SUFFIX = "-lock"
#: The lock file is small; a bigger one is not ours and is not read further.
MAX_INFO_BYTES = 4096
#: Where the lock byte sits on Windows, past the holder's information (which stays
#: readable: Windows locks are mandatory for the bytes they cover).
_WINDOWS_LOCK_OFFSET = 1 << 20


def lock_path(project: Path) -> Path:
    """The lock file of ``project``."""
    return project.with_name(project.name + SUFFIX)


class ProjectLock:
    """A held lock on one project; :meth:`release` it when the project is closed.

    Args:
        path: the lock file.
        fd: its descriptor, locked.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, project: Path) -> ProjectLock | None:
        """Take the lock of ``project`` without waiting; None when another process has it.

        Raises:
            OSError: the lock file cannot be made (a read-only folder); the caller
                decides whether to go on without it.
        """
        path = lock_path(project)
        for _ in range(5):  # a holder releasing meanwhile removes the file we opened
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            if not _try_lock(fd):
                os.close(fd)
                return None
            if _same_file(fd, path):
                _write_info(fd)
                return cls(path, fd)
            _unlock(fd)
            os.close(fd)
        return None

    def release(self) -> None:
        """Remove the lock file and let go (removed first: nobody locks a stale file)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        _unlock(fd)
        os.close(fd)

    @property
    def held(self) -> bool:
        """True until :meth:`release`."""
        return self._fd is not None


def holder(project: Path) -> str:
    """Who holds the lock of ``project``, in words ("process 1234 on host, since 14:02")."""
    try:
        with lock_path(project).open("rb") as fh:
            info = json.loads(fh.read(MAX_INFO_BYTES))
        since = time.strftime("%H:%M", time.localtime(float(info["since"])))
        return f"process {int(info['pid'])} on {info['host']}, since {since}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _write_info(fd: int) -> None:
    info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps(info).encode("utf-8"))


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (opened.st_dev, opened.st_ino) == (on_disk.st_dev, on_disk.st_ino)


if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        with contextlib.suppress(OSError):
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
