"""Encrypting and decrypting a project file, and unlocking an encrypted one.

A project is encrypted or decrypted whole, into a new file beside it, with
SQLCipher's ``sqlcipher_export`` (SQLCipher's documented way between plain and
encrypted databases); the new file is checked (every table's rows counted against
the original, SQLite's quick check), then atomically put in the original's place.
Until that rename the original is untouched in content: it is the backup, kept until
the new file is known good. The conversion needs the file to itself: another
process holding the project open (a window, a server, a worker) is a clear refusal.

Why the SQLite header is not kept readable: SQLCipher can leave the first bytes in
clear (``cipher_plaintext_header_size``), but then the random salt of the key
derivation is not stored in the file and must be kept elsewhere: a second file that
must travel with the project (losing it loses the data), or one salt shared by every
project (which lets a passphrase guess be tried against all projects at once). The
project stays one file with SQLCipher's own layout instead; it is still recognised
by its ``.lepton`` name, and by the app as a file that is not SQLite and is a whole
number of cipher pages (see :func:`~lepton_desktop.core.store.keys.looks_encrypted`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from pathlib import Path
from typing import Any

from lepton_desktop.core.errors import InvalidOptionError, LeptonError
from lepton_desktop.core.store import keys
from lepton_desktop.core.store.db import (
    APPLICATION_ID,
    cipher_module,
    is_encrypted,
    operational_errors,
    read_header,
    sqlite_files_open_for,
)

#: How long a conversion waits for another connection to let go of the project.
IN_USE_WAIT_S = 2.0
_COMPANIONS = ("-wal", "-shm", "-journal")


@dataclasses.dataclass(frozen=True)
class Conversion:
    """What encrypting or decrypting a project did.

    Attributes:
        path: the project file (now in its new form).
        encrypted: whether it is encrypted now.
        tables: how many tables were copied (Optuna's included).
        rows: how many rows in all, each counted in both files.
        seconds: how long it took (the key derivation included).
        notes: plain copies of the project found beside it (upgrade backups), which
            encrypting does not touch.
    """

    path: Path
    encrypted: bool
    tables: int
    rows: int
    seconds: float
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """The result as ``--json`` prints it."""
        return {
            "path": str(self.path),
            "encrypted": self.encrypted,
            "tables": self.tables,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "notes": list(self.notes),
        }


def unlock(path: Path, passphrase: str) -> None:
    """Derive the key of an encrypted project from ``passphrase``, check it, and hold it.

    A plain project needs nothing. Only ever reads.

    Raises:
        WrongPassphraseError: the passphrase does not open the file.
        NotAProjectError: it opens, but is not a Lepton project.
    """
    if not is_encrypted(path) or (keys.key_for(path) and sqlite_files_open_for(path)):
        return
    key = keys.derive_key(passphrase, keys.salt_of(path))
    keys.remember(path, key)
    try:
        read_header(path)  # opens with the key: a wrong one is refused, nothing written
    except BaseException:
        keys.forget(path)
        raise


def encrypt(path: Path, passphrase: str) -> Conversion:
    """Encrypt the plain project at ``path`` in place with a key from ``passphrase``.

    Raises:
        InvalidOptionError: already encrypted, or an unfit passphrase.
        NotAProjectError: not a Lepton project.
        LeptonError: the project is open elsewhere. In every case nothing changed.
    """
    started = time.perf_counter()
    if is_encrypted(path):
        raise InvalidOptionError(f"{path}: the project is already encrypted; nothing was changed")
    keys.check_passphrase(passphrase)
    read_header(path)  # a Lepton project, or refused untouched
    key = keys.derive_key(passphrase, os.urandom(keys.SALT_BYTES))
    tables, rows = _convert(path, None, key)
    keys.remember(path, key)
    return Conversion(path, True, tables, rows, time.perf_counter() - started,
                      _plain_copies(path))  # fmt: skip


def decrypt(path: Path) -> Conversion:
    """Decrypt the encrypted project at ``path`` in place (its key must be held: unlock).

    Raises:
        InvalidOptionError: the project is not encrypted.
        PassphraseNeededError: no key is held for it.
        LeptonError: the project is open elsewhere. In every case nothing changed.
    """
    started = time.perf_counter()
    if not is_encrypted(path):
        read_header(path)  # not a project at all says so first
        raise InvalidOptionError(f"{path}: the project is not encrypted; nothing was changed")
    read_header(path)  # the key is held and right
    key = keys.key_for(path)
    tables, rows = _convert(path, key, None)
    keys.forget(path)
    return Conversion(path, False, tables, rows, time.perf_counter() - started)


def _convert(path: Path, source_key: str | None, target_key: str | None) -> tuple[int, int]:
    if sqlite_files_open_for(path):
        raise LeptonError(f"{path}: the project is open in this program; close it first")
    scratch = path.with_name(f".{path.name}.{'encrypting' if target_key else 'decrypting'}")
    _remove(scratch)
    source = _open_alone(path, source_key)
    try:
        counted = _export(source, scratch, target_key)
        source.close()
        _finish(scratch, target_key)
        os.replace(scratch, path)  # atomic: the original stays whole until here
        _sync_folder(path.parent)
    except BaseException:
        with contextlib.suppress(Exception):
            source.execute("PRAGMA journal_mode = WAL")  # as it was (if still open)
        source.close()
        _remove(scratch)
        raise
    return counted


def _open_alone(path: Path, key: str | None) -> Any:
    """The project opened for the conversion, with no other connection to it anywhere.

    Leaving WAL mode needs every other connection closed (other processes included),
    and checkpoints the whole WAL into the file: what is exported is all there is.
    """
    conn = cipher_module().connect(str(path), timeout=IN_USE_WAIT_S, isolation_level=None)
    try:
        conn.execute("PRAGMA cipher_log_level = NONE")
        if key is not None:
            conn.execute(f'PRAGMA key = "{key}"')
        mode = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
    except operational_errors() as exc:
        conn.close()
        raise LeptonError(
            f"{path}: the project is in use by another program (a window, a server or a "
            f"worker: {exc}); close it and try again. Nothing was changed"
        ) from None
    if str(mode).lower() != "delete":
        conn.close()
        raise LeptonError(
            f"{path}: the project is in use by another program (it stays in {mode} mode); "
            "close it and try again. Nothing was changed"
        )
    return conn


def _export(source: Any, scratch: Path, key: str | None) -> tuple[int, int]:
    version = int(source.execute("PRAGMA user_version").fetchone()[0])
    source.execute(f'ATTACH DATABASE ? AS converted KEY "{key or ""}"', (str(scratch),))
    source.execute("SELECT sqlcipher_export('converted')")
    _copy_virtual_tables(source)
    # sqlcipher_export copies schema and rows; the header's two numbers are ours to copy.
    source.execute(f"PRAGMA converted.user_version = {version}")
    source.execute(f"PRAGMA converted.application_id = {APPLICATION_ID}")
    counted = _compare(source)
    source.execute("DETACH DATABASE converted")
    return counted


def _copy_virtual_tables(source: Any) -> None:
    """Add the full-text indexes' definitions, which ``sqlcipher_export`` skips.

    It copies tables that have pages, so the indexes' shadow tables (their data) come
    across but not the virtual tables over them (no pages of their own). SQLite's
    VACUUM carries them the same way: their schema rows copied as they are.
    """
    source.execute("PRAGMA writable_schema = ON")
    try:
        source.execute(
            "INSERT INTO converted.sqlite_schema SELECT * FROM main.sqlite_schema "
            "WHERE type = 'table' AND rootpage = 0 "
            "AND name NOT IN (SELECT name FROM converted.sqlite_schema)"
        )
    finally:
        source.execute("PRAGMA writable_schema = OFF")


def _compare(source: Any) -> tuple[int, int]:
    """The same schema and every table's rows in both files, or a refusal."""
    shape = "SELECT type, name, tbl_name, sql FROM {}.sqlite_schema ORDER BY type, name"
    if source.execute(shape.format("main")).fetchall() != (
        source.execute(shape.format("converted")).fetchall()
    ):
        raise LeptonError("the converted copy's schema differs; nothing was changed")
    names = [r[0] for r in source.execute(
        "SELECT name FROM main.sqlite_schema WHERE type = 'table' AND rootpage > 0"
    )]  # fmt: skip
    rows = 0
    for name in names:
        quoted = '"' + name.replace('"', '""') + '"'
        before = source.execute(f"SELECT count(*) FROM main.{quoted}").fetchone()[0]
        after = source.execute(f"SELECT count(*) FROM converted.{quoted}").fetchone()[0]
        if before != after:
            raise LeptonError(f"the converted copy lost rows of {name}; nothing was changed")
        rows += int(before)
    return len(names), rows


def _finish(scratch: Path, key: str | None) -> None:
    """Put the new file in WAL mode, as every project is, and on the disk for good."""
    conn = cipher_module().connect(str(scratch), isolation_level=None)
    try:
        conn.execute("PRAGMA cipher_log_level = NONE")
        if key is not None:
            conn.execute(f'PRAGMA key = "{key}"')
        check = conn.execute("PRAGMA quick_check(1)").fetchall()[0][0]
        if check != "ok":
            raise LeptonError(
                f"the converted copy failed SQLite's check ({check}); nothing was changed"
            )
        conn.execute("PRAGMA journal_mode = WAL").fetchall()
    finally:
        conn.close()
    with open(scratch, "rb") as handle:
        os.fsync(handle.fileno())


def _sync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove(path: Path) -> None:
    for suffix in ("", *_COMPANIONS):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def _plain_copies(path: Path) -> tuple[str, ...]:
    copies = sorted(path.parent.glob(f"{path.stem}.schema*.bak{path.suffix}"))
    return tuple(
        f"{copy}: an older plain copy (an upgrade's backup) is not encrypted; delete it "
        "if it holds private data"
        for copy in copies
    )
