"""Telling a damaged project file from a bug, and saying so in a sentence.

A flipped bit or a cut-off copy shows itself in many ways: SQLite's "database disk
image is malformed" or "malformed database schema", text that is no longer UTF-8,
stored JSON that no longer parses, a table whose definition no longer matches the
schema. :func:`damage_of` classifies an exception raised while a project was read
(checking the file, read-only, when the exception alone does not tell), and
:func:`damaged_error` words the error, pointing at the backup copy an upgrade left
next to the file when there is one. :func:`check_intact` is the cheap check run
before work that writes, so a damaged file is refused before anything is written.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from lepton_desktop.core.errors import DamagedProjectError, LeptonError
from lepton_desktop.core.store import migrations
from lepton_desktop.core.store.db import (
    connect_to_inspect,
    database_errors,
    operational_errors,
    read_header,
)

#: SQLite messages that mean the file's bytes are wrong (not a busy or full disk).
_DAMAGE_MARKERS = (
    "malformed",
    "file is not a database",
    "could not decode to utf-8",
    "database corrupt",
)
#: SQLite messages about the environment, never about damage.
_NOT_DAMAGE_MARKERS = ("locked", "busy", "readonly", "read-only", "disk is full", "unable to open")
#: Our tables holding JSON text, and those columns. The request log and feedback are
#: left out: they can hold millions of rows and only monitoring reads them.
JSON_COLUMNS = {
    "dataset_versions": ("operations", "pipeline", "splits"),
    "dataset_columns": ("stats",),
    "jobs": ("args", "result"),
    "runs": ("config", "evaluation"),
    "model_versions": ("metrics", "params", "pipeline", "signature"),
    "tuning_studies": ("objectives", "directions", "space", "options", "best_params"),
    "deployments": ("models", "loaded", "options"),
}
#: Tables checked before work that writes: the project's own records (small). Logs,
#: checkpoints and dataset rows are checked when the work reads them.
RECORD_TABLES = (
    "lepton_migrations",
    "lepton_meta",
    "datasets",
    "dataset_versions",
    "dataset_columns",
    "jobs",
    "runs",
    "models",
    "model_versions",
    "model_aliases",
    "tuning_studies",
    "deployments",
)


def is_damage_message(exc: BaseException) -> bool:
    """True when ``exc`` is an SQLite error that by itself means the file is damaged."""
    if not isinstance(exc, database_errors()):
        return False
    text = str(exc).lower()
    return any(m in text for m in _DAMAGE_MARKERS) and not any(
        m in text for m in _NOT_DAMAGE_MARKERS
    )


def damage_of(path: Path | None, exc: BaseException) -> DamagedProjectError | None:
    """The error to report if ``exc`` (raised while ``path`` was in use) means damage.

    ``exc`` alone decides for SQLite's corruption messages; anything else (a JSON or
    SQL error, a KeyError from a garbled record) makes the file be checked, read-only:
    if the check finds damage, that is the report; if not, the exception is a bug and
    None is returned (the caller lets it through, traceback and all).
    """
    if path is None or isinstance(exc, LeptonError) or not _is_project(path):
        return None
    if is_damage_message(exc):
        return damaged_error(path, _first_line(str(exc)))
    reason = diagnose(path)
    return damaged_error(path, reason) if reason is not None else None


def _is_project(path: Path) -> bool:
    try:
        read_header(path)
    except LeptonError:
        return False
    return True


def diagnose(path: Path) -> str | None:
    """What is wrong with the project file at ``path``, or None if nothing is found.

    Read-only: SQLite's quick check of every page, the schema against the one the
    migrations create, the migrations table against the header, and every stored
    JSON value of the project's records.
    """
    try:
        conn = connect_to_inspect(path)
    except database_errors() as exc:
        return _first_line(str(exc))
    try:
        return _problem(conn)
    except database_errors() as exc:
        return _first_line(str(exc))
    finally:
        conn.close()


def _problem(conn: sqlite3.Connection) -> str | None:
    result = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
    if result != "ok":
        return _first_line(str(result))
    return _schema_problem(conn) or _migrations_problem(conn) or _json_problem(conn)


def _schema_problem(conn: sqlite3.Connection) -> str | None:
    # Tables and indexes are compared by what they hold (columns: name, type, NOT
    # NULL, key), not by their SQL text, which sqlite-utils' transform() words
    # differently from one release to the next.
    found = _layout(conn)
    for key, columns in _expected_layout().items():
        if found.get(key) != columns:
            return f"the definition of {key[0]} {key[1]!r} is not the one this release made"
    return None


def _expected_layout() -> dict[tuple[str, str], list[tuple[object, ...]]]:
    memory = sqlite3.connect(":memory:", isolation_level=None)
    try:
        migrations.initialize(memory)
        return _layout(memory)
    finally:
        memory.close()


def _layout(conn: sqlite3.Connection) -> dict[tuple[str, str], list[tuple[object, ...]]]:
    layout = {}
    for kind, name in conn.execute(
        "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'index') "
        "AND name NOT LIKE 'ds!_%' ESCAPE '!'"
    ).fetchall():
        query = (
            'SELECT cid, name, type, "notnull", pk FROM pragma_table_info(?) ORDER BY cid'
            if kind == "table"
            else "SELECT seqno, cid, name FROM pragma_index_info(?) ORDER BY seqno"
        )
        columns = conn.execute(query, (name,)).fetchall()
        layout[(kind, name)] = [tuple(c) for c in columns]
    return layout


def _migrations_problem(conn: sqlite3.Connection) -> str | None:
    applied = conn.execute("SELECT COUNT(*) FROM lepton_migrations").fetchone()[0]
    version = migrations.user_version(conn)
    if applied != version:
        return f"the header says schema {version}, but {applied} migrations are recorded"
    return None


def _json_problem(conn: sqlite3.Connection) -> str | None:
    for table, columns in JSON_COLUMNS.items():
        names = ", ".join(f"CAST({c} AS BLOB)" for c in columns)
        for row in conn.execute(f"SELECT rowid, {names} FROM {table}"):
            for column, value in zip(columns, row[1:], strict=True):
                if value is not None and not _is_json(value):
                    return f"{table}.{column} of row {row[0]} is not valid JSON"
    return None


def _is_json(value: bytes) -> bool:
    try:
        json.loads(value.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False
    return True


def probe(path: Path) -> None:
    """The check of every open, before anything else touches the file (read-only).

    Reading the migrations table makes SQLite parse the whole schema (a damaged one
    fails here, not in the middle of a command) and compares the migrations recorded
    with the header's schema version (a flipped version would otherwise be "upgraded").

    Raises:
        DamagedProjectError: the schema does not parse or does not match the header.
    """
    try:
        conn = connect_to_inspect(path)
    except operational_errors():
        return  # cannot be opened here at all: the ordinary open says why
    try:
        reason = _migrations_problem(conn)
    except database_errors() as exc:
        if any(m in str(exc).lower() for m in _NOT_DAMAGE_MARKERS):
            raise
        reason = _first_line(str(exc))
    finally:
        conn.close()
    if reason is not None:
        raise damaged_error(path, reason)


def check_intact(conn: sqlite3.Connection, path: Path, tables: Iterable[str] = ()) -> None:
    """Refuse to write to a damaged file: check the records and ``tables`` first.

    SQLite's quick check of the project's own tables (small) and of ``tables`` (the
    dataset rows a job will read), plus the stored JSON of the records: a few
    milliseconds on a typical project, proportional to ``tables`` otherwise.

    Raises:
        DamagedProjectError: the check found damage (nothing has been written).
    """
    try:
        for table in (*RECORD_TABLES, *tables):
            result = conn.execute(f"PRAGMA quick_check({table})").fetchone()[0]
            if result != "ok":
                raise damaged_error(path, _first_line(str(result)))
        reason = _migrations_problem(conn) or _json_problem(conn)
    except database_errors() as exc:
        if not is_damage_message(exc) and "no such table" not in str(exc):
            raise
        raise damaged_error(path, _first_line(str(exc))) from None
    if reason is not None:
        raise damaged_error(path, reason)


def damaged_error(path: Path, reason: str) -> DamagedProjectError:
    """The one-line error for a damaged project, with what the user can do about it."""
    backup = newest_backup(path)
    remedy = (
        f"restore the backup copy {backup.name} (made when the file was upgraded; later "
        "changes are not in it)"
        if backup is not None
        else "restore it from a backup copy"
    )
    return DamagedProjectError(
        f"{path}: the project file is damaged ({reason}). {remedy.capitalize()}, or save "
        f"what is left with: sqlite3 {path.name} .recover"
    )


def newest_backup(path: Path) -> Path | None:
    """The newest backup an upgrade left next to ``path`` (``NAME.schemaN-DATE.bak.lepton``)."""
    with contextlib.suppress(OSError):
        copies = sorted(
            path.parent.glob(f"{path.stem}.schema*.bak{path.suffix}"),
            key=lambda p: p.stat().st_mtime,
        )
        return copies[-1] if copies else None
    return None


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "unreadable"
    return line[:200]
