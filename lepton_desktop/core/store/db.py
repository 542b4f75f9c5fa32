"""Opening project files: header checks, PRAGMAs and the one transaction helper.

Every connection to a project opens here, plain or encrypted alike: a file that is
an SQLCipher database (see :mod:`~lepton_desktop.core.store.keys`) is opened with
SQLCipher's DB-API module and the key this process holds for it, and behaves as a
plain one from then on. Its exceptions are not the standard library's: catch
:func:`database_errors` (and friends) rather than ``sqlite3.DatabaseError``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from lepton_desktop.core.errors import (
    LeptonError,
    NotAProjectError,
    PassphraseNeededError,
    WrongPassphraseError,
)
from lepton_desktop.core.faults import kill_point
from lepton_desktop.core.store import keys

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

#: ``PRAGMA application_id`` of every Lepton project: "LEPT" in ASCII.
APPLICATION_ID = 0x4C455054
SQLITE_MAGIC = b"SQLite format 3\x00"
#: The largest value (blob or text) SQLite stores: its default SQLITE_MAX_LENGTH.
MAX_VALUE_BYTES = 1_000_000_000
BUSY_TIMEOUT_S = 30.0
#: The DB-API module of encrypted projects: imported on first use, so that commands on
#: plain projects start without it (it loads its own SQLite and OpenSSL).
CIPHER_MODULE = "sqlcipher3.dbapi2"
#: What SQLCipher says when a key does not decrypt the first page.
_NOT_A_DATABASE = "file is not a database"
# Files this process has opened with SQLite (device, inode). POSIX drops every fcntl
# lock a process holds on a file when it closes *any* descriptor of that file, so a
# plain open()/close() of a project that SQLite has open here (our connections, or
# Optuna's) would silently release SQLite's locks: another process could then take
# the file for its "last connection" clean-up and delete the WAL under us ("disk I/O
# error"; sqlite.org/howtocorrupt.html, 2.2). Such files are only ever read through
# SQLite, whose VFS defers closing while locks are held.
_SQLITE_FILES: set[tuple[int, int]] = set()
_SQLITE_FILES_LOCK = threading.Lock()


def cipher_module() -> Any:
    """SQLCipher's DB-API module (``sqlcipher3.dbapi2``), imported now if not yet."""
    import sqlcipher3.dbapi2

    return sqlcipher3.dbapi2


def _errors(name: str) -> tuple[type[Exception], ...]:
    # No SQLCipher connection can have raised before its module was imported.
    cipher = sys.modules.get(CIPHER_MODULE)
    found = (getattr(sqlite3, name),)
    return found if cipher is None else (*found, getattr(cipher, name))


def database_errors() -> tuple[type[Exception], ...]:
    """What a plain (``sqlite3``) or encrypted (``sqlcipher3``) connection raises."""
    return _errors("DatabaseError")


def operational_errors() -> tuple[type[Exception], ...]:
    """Both modules' ``OperationalError`` (locks, a bad query)."""
    return _errors("OperationalError")


def integrity_errors() -> tuple[type[Exception], ...]:
    """Both modules' ``IntegrityError`` (a constraint refused the change)."""
    return _errors("IntegrityError")


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
    if keys.looks_encrypted(header, size):
        return _read_encrypted_header(path)
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
    return _header_through(lambda: connect(path, readonly=True), path, "an SQLite database")


def _header_through(
    open_conn: Callable[[], sqlite3.Connection], path: Path, what: str
) -> tuple[int, int]:
    """The application id and schema version read through ``open_conn()``; ``what``
    names the file in the error when it is SQLite but not a Lepton project."""
    try:
        conn = open_conn()
        try:
            application_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
            user_version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
    except database_errors() as exc:
        raise NotAProjectError(f"{path}: cannot be read as a Lepton project ({exc})") from None
    if application_id != APPLICATION_ID:
        raise NotAProjectError(
            f"{path}: {what}, but not a Lepton project (application_id {application_id:#x})"
        )
    return application_id, user_version


def _read_encrypted_header(path: Path) -> tuple[int, int]:
    # Random bytes to anyone without the key: with it, read through SQLCipher (an
    # inspecting connection, which never writes and leaves no -wal/-shm behind).
    if keys.key_for(path) is None:
        raise PassphraseNeededError(
            f"{path}: not an SQLite database: an encrypted Lepton project (or not a "
            "project at all); give its passphrase (LEPTON_PASSPHRASE, --passphrase-file "
            "FILE, or the prompt)"
        )
    return _header_through(lambda: connect_to_inspect(path), path, "an encrypted SQLite database")


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
    transactions under our explicit control (:func:`transaction`). An encrypted
    project opens with the key this process holds for it.

    Raises:
        PassphraseNeededError: the file is encrypted and no key for it is held.
        WrongPassphraseError: the key held does not open it.
    """
    key = encryption_key(path)
    if readonly:
        uri = Path(path).resolve().as_uri() + "?mode=ro"
        conn = _open(uri, key, uri=True)
    else:
        conn = _open(str(path), key)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA foreign_keys = ON")
    remember_sqlite_file(path)
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        # Deleted content is overwritten with zeros, not left in free pages: a request
        # forgotten, a dataset deleted, is gone from the file's bytes too.
        conn.execute("PRAGMA secure_delete = ON")
    return conn


def connect_to_inspect(path: Path | str) -> sqlite3.Connection:
    """A connection for looking only (checks of a file that may be damaged).

    Not ``mode=ro``: a read-only connection to a WAL file must create its ``-wal`` and
    ``-shm`` files and, closing, cannot remove them, so looking would leave two new
    files beside the project. This one never changes the journal mode and is only
    ever used to read; closing it as the last connection removes them as it should.
    """
    conn = _open(str(path), encryption_key(path))
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA query_only = ON")
    remember_sqlite_file(path)
    return conn


def connect_for_engine(path: Path | str) -> Any:
    """A DB-API connection to an encrypted project for SQLAlchemy (Optuna's storage).

    SQLAlchemy's SQLite dialect manages transactions itself (the module's default
    isolation level) and shares pooled connections between threads (Optuna's
    heartbeat thread), so those two settings differ from :func:`connect`'s.
    """
    key = encryption_key(path)
    if key is None:
        return sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    return _open(str(path), key, isolation_level="", check_same_thread=False)


def engine_options(path: Path | str) -> dict[str, Any]:
    """``create_engine`` options for SQLAlchemy (Optuna) on the project at ``path``.

    None for a plain file (SQLAlchemy opens it itself); for an encrypted one, its
    connections come from :func:`connect_for_engine`, and SQLAlchemy reads errors as
    SQLCipher's module raises them.
    """
    if not is_encrypted(path):
        return {}
    encryption_key(path)  # no key held: refused here, in one line
    return {"creator": lambda: connect_for_engine(path), "module": cipher_module()}


def is_encrypted(path: Path | str) -> bool:
    """Whether the project file at ``path`` is encrypted (by its bytes, or as first seen)."""
    return keys.is_encrypted(path, opened_here=_opened_here(path))


def encryption_key(path: Path | str) -> str | None:
    """The key that opens ``path``: None for a plain (or new) file.

    Raises:
        PassphraseNeededError: the file is encrypted and no key for it is held.
    """
    if not is_encrypted(path):
        return None
    key = keys.key_for(path)
    if key is None:
        raise PassphraseNeededError(
            f"{path}: the project is encrypted; give its passphrase (LEPTON_PASSPHRASE, "
            "--passphrase-file FILE, or the prompt)"
        )
    return key


def sqlite_files_open_for(path: Path | str) -> bool:
    """Whether SQLite holds the file at ``path`` open in this process (Linux: exactly)."""
    return _opened_here(path)


def _opened_here(path: Path | str) -> bool:
    try:
        return _open_with_sqlite_here(os.stat(path))
    except OSError:
        return False


def _open(
    target: str,
    key: str | None,
    *,
    uri: bool = False,
    isolation_level: str | None = None,
    check_same_thread: bool = True,
) -> sqlite3.Connection:
    if key is None:
        return sqlite3.connect(
            target,
            uri=uri,
            timeout=BUSY_TIMEOUT_S,
            isolation_level=isolation_level,  # type: ignore[arg-type]
            check_same_thread=check_same_thread,
        )
    sqlcipher = cipher_module()
    conn = sqlcipher.connect(
        target,
        uri=uri,
        timeout=BUSY_TIMEOUT_S,
        isolation_level=isolation_level,
        check_same_thread=check_same_thread,
    )
    try:
        # SQLCipher logs a failed key to stderr by default: the error below says it.
        conn.execute("PRAGMA cipher_log_level = NONE")
        conn.execute(f'PRAGMA key = "{_checked(key)}"')
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
    except sqlcipher.DatabaseError as exc:
        conn.close()
        if _NOT_A_DATABASE not in str(exc):
            raise
        shown = target.removeprefix("file://").split("?", 1)[0]
        raise WrongPassphraseError(
            f"{shown}: the passphrase does not open this project (a wrong passphrase, or "
            "the file is damaged); nothing was written"
        ) from None
    return cast("sqlite3.Connection", conn)


def _checked(key: str) -> str:
    if not keys.key_literal_ok(key):
        raise ValueError("not a raw SQLCipher key")  # never reaches SQL text
    return key


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run the block in one write transaction: commit on success, roll back on error.

    ``BEGIN IMMEDIATE`` takes the write lock up front, so a busy database waits for
    the busy timeout instead of failing half way. Nested use joins the outer
    transaction. An integrity error (``sqlite3.IntegrityError``) becomes a :class:`LeptonError`.
    """
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except integrity_errors() as exc:
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


def backup_to(conn: sqlite3.Connection, target: Path, key: str | None = None) -> None:
    """Copy the whole database (WAL included) to ``target`` with SQLite's backup API.

    ``key``: the source's key when it is encrypted; the copy is encrypted with it too.
    """
    dest = _open(str(target), key, isolation_level="")
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
