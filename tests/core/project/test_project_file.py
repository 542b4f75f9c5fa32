"""Creating, opening and refusing project files (DESIGN §3)."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from lepton_desktop.core.errors import (
    NotAProjectError,
    ProjectExistsError,
    SchemaTooNewError,
)
from lepton_desktop.core.project import Project
from lepton_desktop.core.store import migrations
from lepton_desktop.core.store.db import APPLICATION_ID, transaction

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def _pragma(path: Path, name: str) -> object:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


def test_create_sets_identity_schema_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "new.lepton"
    Project.create(path).close()
    assert _pragma(path, "application_id") == APPLICATION_ID
    assert _pragma(path, "user_version") == migrations.SCHEMA_VERSION
    assert _pragma(path, "journal_mode") == "wal"
    with Project.open(path) as project:
        assert project.datasets() == []
        assert project.integrity_ok()
        names = [r[0] for r in project.conn.execute("SELECT name FROM lepton_migrations")]
    assert names == [m.__name__ for m in migrations.MIGRATIONS]


def test_create_refuses_an_existing_file(tmp_project: Path) -> None:
    before = tmp_project.read_bytes()
    with pytest.raises(ProjectExistsError, match="already exists"):
        Project.create(tmp_project)
    assert tmp_project.read_bytes() == before


def _random_bytes(path: Path) -> None:
    path.write_bytes(os.urandom(4096))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _foreign_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO notes (body) VALUES ('hello')")
    conn.commit()
    conn.close()


def _truncated(path: Path) -> None:
    project = Project.create(path)
    with transaction(project.conn):
        project.conn.execute("CREATE TABLE filler (x BLOB)")
        project.conn.executemany("INSERT INTO filler VALUES (?)", [(os.urandom(2000),)] * 50)
    project.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _newer_schema(path: Path) -> None:
    Project.create(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {migrations.SCHEMA_VERSION + 1}")
    conn.close()


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (_random_bytes, NotAProjectError, "not an SQLite database"),
        (_empty, NotAProjectError, "empty"),
        (_foreign_sqlite, NotAProjectError, "not a Lepton project"),
        (_truncated, NotAProjectError, "truncated"),
        (_newer_schema, SchemaTooNewError, "newer Lepton Desktop"),
    ],
)
def test_open_refuses_without_touching_the_file(tmp_path: Path, make, error, message) -> None:
    path = tmp_path / "suspect.lepton"
    make(path)
    before = path.read_bytes()
    siblings = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(error, match=message) as info:
        Project.open(path, upgrade=True)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == siblings  # no -wal, -shm or backup


def test_open_a_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(NotAProjectError, match="no such file"):
        Project.open(tmp_path / "absent.lepton")
    assert not (tmp_path / "absent.lepton").exists()


def test_failed_transaction_leaves_nothing(tmp_project: Path) -> None:
    with Project.open(tmp_project) as project:
        with pytest.raises(RuntimeError), transaction(project.conn):
            project.conn.execute("INSERT INTO lepton_meta VALUES ('a', 'b')")
            raise RuntimeError("boom")
        assert project.conn.execute("SELECT COUNT(*) FROM lepton_meta").fetchone()[0] == 0
        assert project.integrity_ok()


def test_another_process_can_open_a_project_still_open_after_create(tmp_path: Path) -> None:
    path = tmp_path / "fresh.lepton"
    with Project.create(path), Project.open(path) as second:  # reads the header on disk
        assert second.schema_version == migrations.SCHEMA_VERSION


def test_an_upgraded_project_opens_elsewhere_while_still_open(tmp_path: Path) -> None:
    path = tmp_path / "old.lepton"
    shutil.copy(FIXTURES / "schema_v1.lepton", path)
    with Project.open(path, upgrade=True), Project.open(path) as second:
        assert second.dataset("flowers").n_rows == 3
