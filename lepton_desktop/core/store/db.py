"""Opening project files: header checks, PRAGMAs and the one transaction helper."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from lepton_desktop.core.errors import LeptonError, NotAProjectError
from lepton_desktop.core.faults import kill_point

if TYPE_CHECKING:
    from collections.abc import Iterator

#: ``PRAGMA application_id`` of every Lepton project: "LEPT" in ASCII.
APPLICATION_ID = 0x4C455054
SQLITE_MAGIC = b"SQLite format 3\x00"
#: The largest value (blob or text) SQLite stores: its default SQLITE_MAX_LENGTH.
MAX_VALUE_BYTES = 1_000_000_000
BUSY_TIMEOUT_S = 30.0
# Files this process has opened with SQLite (device, inode). POSIX drops every fcntl
# lock a process holds on a file when it closes *any* descriptor of that file, so a
# plain open()/close() of a project that SQLite has open here (our connections, or
# Optuna's) would silently release SQLite's locks: another process could then take
# the file for its "last connection" clean-up and delete the WAL under us ("disk I/O
# error"; sqlite.org/howtocorrupt.html, 2.2). Such files are only ever read through
# SQLite, whose VFS defers closing while locks are held.
_SQLITE_FILES: set[tuple[int, int]] = set()
_SQLITE_FILES_LOCK = threading.Lock()


def remember_sqlite_file(path: Path | str) -> None:
    """Note that this process opens ``path`` with SQLite (see ``_SQLITE_FILES``)."""
    with contextlib.suppress(OSError):
        stat = Path(path).stat()
        with _SQLITE_FILES_LOCK:
            _SQLITE_FILES.add((stat.st_dev, stat.st_ino))


def read_header(path: Path) -> tuple[int, int]:
    """Return ``(application_id, user_version)`` from the file header, reading only.

    The checks use the 100-byte SQLite header so that a file that is not ours is
    never opened by SQLite at all (which could create -wal/-shm files or roll back a
    hot journal): the file stays byte-for-byte unchanged.

    Raises:
        NotAProjectError: the file is missing, empty, not SQLite, or truncated.
    """
    if not path.exists():
        raise NotAProjectError(f"{path}: no such file")
    if path.is_dir():
        raise NotAProjectError(f"{path}: is a folder, not a project file")
    stat = path.stat()
    if _open_with_sqlite_here(stat):
        return _read_header_with_sqlite(path)
    size = stat.st_size
    with path.open("rb") as fh:
        header = fh.read(100)
    if size == 0:
        raise NotAProjectError(f"{path}: the file is empty; it is not a Lepton project")
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        raise NotAProjectError(f"{path}: not a Lepton project (not an SQLite database)")
    _check_not_truncated(path, header, size)
    user_version, application_id = struct.unpack(">i4xi", header[60:72])
    if application_id != APPLICATION_ID:
        raise NotAProjectError(
            f"{path}: an SQLite database, but not a Lepton project (application_id "
            f"{application_id:#x})"
        )
    return application_id, user_version


def _open_with_sqlite_here(stat: os.stat_result) -> bool:
    key = (stat.st_dev, stat.st_ino)
    if os.name != "posix" or key not in _SQLITE_FILES:
        return False  # (Windows locks do not vanish with another handle's close)
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        return True  # no way to look (macOS): assume SQLite still has it open
    # Linux: exact, so a new file that reuses a closed project's inode is read raw.
    for entry in os.listdir(fds):
        with contextlib.suppress(OSError):
            opened = os.stat(fds / entry)
            if (opened.st_dev, opened.st_ino) == key:
                return True
    return False


def sqlite_files_open() -> bool:
    """Whether this process still holds a project open (True when it cannot tell).

    Linux only (``/proc/self/fd``): an open descriptor of a file this process opened
    with SQLite (a project: ours or Optuna's connection to it), or of its ``-wal``,
    ``-shm`` or ``-journal`` companion, means a connection is still open. Ending the
    process without the interpreter's shutdown would skip its close: for the last
    connection of a WAL database, the checkpoint that folds the WAL back into the
    project file and deletes it. (Other libraries' own SQLite files, such as
    onnxruntime's telemetry cache, are theirs to recover.)
    """
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        return True
    with _SQLITE_FILES_LOCK:
        known = set(_SQLITE_FILES)
    for entry in os.listdir(fds):
        with contextlib.suppress(OSError):
            if _file_key(fds / entry) in known:
                return True
            target = os.readlink(fds / entry)
            base = target.removesuffix("-wal").removesuffix("-shm").removesuffix("-journal")
            if base != target and _file_key(Path(base)) in known:
                return True
    return False


def _file_key(path: Path) -> tuple[int, int]:
    opened = os.stat(path)
    return opened.st_dev, opened.st_ino


def _read_header_with_sqlite(path: Path) -> tuple[int, int]:
    # A file SQLite has open in this process was an SQLite database then; its
    # application id and schema version are read without closing a raw descriptor.
    try:
        conn = connect(path, readonly=True)
        try:
            application_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
            user_version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise NotAProjectError(f"{path}: cannot be read as a Lepton project ({exc})") from None
    if application_id != APPLICATION_ID:
        raise NotAProjectError(
            f"{path}: an SQLite database, but not a Lepton project (application_id "
            f"{application_id:#x})"
        )
    return application_id, user_version


def _check_not_truncated(path: Path, header: bytes, size: int) -> None:
    page_size = struct.unpack(">H", header[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    change_counter, page_count = struct.unpack(">II", header[24:32])
    valid_for = struct.unpack(">I", header[92:96])[0]
    wal = path.with_name(path.name + "-wal")
    # The in-header page count is only trustworthy when its "valid-for" counter
    # matches, and pages may still live in a WAL that is not yet checkpointed.
    if change_counter != valid_for or (wal.exists() and wal.stat().st_size > 0):
        return
    if page_size < 512 or size < page_count * page_size:
        raise NotAProjectError(
            f"{path}: the file is truncated ({size} bytes, the header promises "
            f"{page_count * page_size}); it cannot be opened safely"
        )


def sqlite_library_version() -> str:
    """The version of the SQLite library this Python uses (for diagnostics)."""
    return sqlite3.sqlite_version


def connect(path: Path | str, *, readonly: bool = False) -> sqlite3.Connection:
    """Open a connection with the project's PRAGMAs (WAL, busy timeout, foreign keys).

    Each process and thread opens its own connection. ``isolation_level=None`` puts
    transactions under our explicit control (:func:`transaction`).
    """
    if readonly:
        uri = Path(path).resolve().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    else:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA foreign_keys = ON")
    remember_sqlite_file(path)
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def connect_to_inspect(path: Path | str) -> sqlite3.Connection:
    """A connection for looking only (checks of a file that may be damaged).

    Not ``mode=ro``: a read-only connection to a WAL file must create its ``-wal`` and
    ``-shm`` files and, closing, cannot remove them, so looking would leave two new
    files beside the project. This one never changes the journal mode and is only
    ever used to read; closing it as the last connection removes them as it should.
    """
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA query_only = ON")
    remember_sqlite_file(path)
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run the block in one write transaction: commit on success, roll back on error.

    ``BEGIN IMMEDIATE`` takes the write lock up front, so a busy database waits for
    the busy timeout instead of failing half way. Nested use joins the outer
    transaction. ``sqlite3.IntegrityError`` becomes a :class:`LeptonError`.
    """
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except sqlite3.IntegrityError as exc:
        conn.execute("ROLLBACK")
        raise LeptonError(f"the project refused the change: {exc}") from exc
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        kill_point("mid-transaction")
        conn.execute("COMMIT")


def checkpoint(conn: sqlite3.Connection) -> None:
    """Copy the WAL into the main file now.

    Other processes check the 100-byte header on disk before opening a project
    (:func:`read_header`); after creating or upgrading a file its new application id
    and schema version must be there, not only in the WAL.
    """
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def integrity_ok(conn: sqlite3.Connection) -> bool:
    """Return True when ``PRAGMA integrity_check`` reports ``ok``."""
    return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def backup_to(conn: sqlite3.Connection, target: Path) -> None:
    """Copy the whole database (WAL included) to ``target`` with SQLite's backup API."""
    dest = sqlite3.connect(str(target))
    try:
        conn.backup(dest)
    finally:
        dest.close()


def run_script(conn: sqlite3.Connection, script: str) -> None:
    # executescript() would COMMIT the caller's transaction first; a migration must
    # stay all-or-nothing, so run the statements one by one inside it.
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)
