"""Creating and opening project files: refuse what is not ours, upgrade after a backup.

Before SQLite ever touches a file its 100-byte header is checked
(:func:`~lepton_desktop.core.store.db.read_header`): a file that is not a Lepton
project, or one written by a newer release, is refused and left byte for byte as it
was. An older file is upgraded only when asked, after a backup copy.
"""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
import time
from pathlib import Path

from lepton_desktop.core.errors import (
    InvalidOptionError,
    ProjectExistsError,
    SchemaTooNewError,
    SchemaTooOldError,
)
from lepton_desktop.core.store import health, migrations
from lepton_desktop.core.store.db import (
    backup_to,
    checkpoint,
    connect,
    encryption_key,
    read_header,
)

SUFFIX = ".lepton"


@dataclasses.dataclass
class OpenedFile:
    """A project file's connection and what opening it did.

    Attributes:
        conn: the connection (WAL, busy timeout, foreign keys).
        upgraded_from: the schema version the file had before an upgrade, if any.
        backup_path: where the pre-upgrade copy was written, if any.
    """

    conn: sqlite3.Connection
    upgraded_from: int | None = None
    backup_path: Path | None = None


def create_file(path: Path) -> sqlite3.Connection:
    """Create a new, empty project file and return its connection.

    Raises:
        ProjectExistsError: the file exists.
        InvalidOptionError: its folder does not exist.
    """
    if path.exists():
        raise ProjectExistsError(f"{path}: already exists; open it or choose another name")
    if not path.parent.exists():
        raise InvalidOptionError(f"{path.parent}: no such folder")
    conn = connect(path)
    try:
        migrations.initialize(conn)
        checkpoint(conn)
    except BaseException:
        conn.close()
        path.unlink(missing_ok=True)
        raise
    return conn


def open_file(path: Path, *, upgrade: bool = False, read_only: bool = False) -> OpenedFile:
    """Open an existing project file.

    Args:
        path: the ``.lepton`` file.
        upgrade: apply pending migrations to an older file (a backup is made first).
        read_only: a connection that refuses every write (``PRAGMA query_only``), for
            a view of a project another app edits; an older file is then refused.

    Raises:
        NotAProjectError: not a Lepton project; the file is left untouched.
        SchemaTooNewError: written by a newer release; the file is left untouched.
        SchemaTooOldError: needs an upgrade and ``upgrade`` is False.
        DamagedProjectError: the schema does not parse or contradicts the header.
    """
    _, version = read_header(path)
    if version > migrations.SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"{path}: made by a newer Lepton Desktop (schema {version}, this release "
            f"reads up to {migrations.SCHEMA_VERSION}); update the app to open it"
        )
    health.probe(path)
    if version < migrations.SCHEMA_VERSION and (read_only or not upgrade):
        raise SchemaTooOldError(
            f"{path}: made by an older Lepton Desktop (schema {version}); it must be "
            f"upgraded to schema {migrations.SCHEMA_VERSION} (a backup is kept)"
        )
    if read_only:
        conn = connect(path)
        conn.execute("PRAGMA query_only = ON")  # any write fails: "readonly database"
        return OpenedFile(conn)
    backup = _backup(path, version) if version < migrations.SCHEMA_VERSION else None
    opened = OpenedFile(connect(path))
    if backup is not None:
        migrations.upgrade(opened.conn)
        checkpoint(opened.conn)
        opened.upgraded_from, opened.backup_path = version, backup
    return opened


def needs_upgrade(path: Path) -> bool:
    """True when the file is a project with an older schema (checks the header only)."""
    return read_header(path)[1] < migrations.SCHEMA_VERSION


def _backup(path: Path, old_version: int) -> Path:
    # Copied through a read-only connection before anything (even the switch to
    # WAL) touches the original, so the backup is the file exactly as it was.
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = path.with_name(f"{path.stem}.schema{old_version}-{stamp}.bak{SUFFIX}")
    wal = path.with_name(path.name + "-wal")
    if not wal.exists() or wal.stat().st_size == 0:
        shutil.copy2(path, backup)  # byte for byte
        return backup
    source = connect(path, readonly=True)  # committed pages may still sit in the WAL
    try:
        backup_to(source, backup, encryption_key(path))  # an encrypted file's copy too
    finally:
        source.close()
    return backup
