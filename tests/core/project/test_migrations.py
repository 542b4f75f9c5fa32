"""Upgrading a frozen schema-1 project (Optuna's upgrade-asset idea)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from lepton_desktop.core.errors import SchemaTooOldError
from lepton_desktop.core.project import Project
from lepton_desktop.core.store import migrations

V1 = Path(__file__).resolve().parents[2] / "fixtures" / "schema_v1.lepton"


@pytest.fixture
def v1_copy(tmp_path: Path) -> Path:
    path = tmp_path / "old.lepton"
    shutil.copy(V1, path)
    return path


def test_the_fixture_is_schema_one() -> None:
    conn = sqlite3.connect(f"{V1.as_uri()}?mode=ro", uri=True)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()


def test_an_older_file_is_not_upgraded_unless_asked(v1_copy: Path) -> None:
    before = v1_copy.read_bytes()
    assert Project.needs_upgrade(v1_copy)
    with pytest.raises(SchemaTooOldError, match="upgraded"):
        Project.open(v1_copy)
    assert v1_copy.read_bytes() == before


def test_upgrade_keeps_data_and_writes_a_backup_first(v1_copy: Path) -> None:
    before = v1_copy.read_bytes()
    with Project.open(v1_copy, upgrade=True) as project:
        assert project.upgraded_from == 1
        assert project.schema_version == migrations.SCHEMA_VERSION
        version = project.dataset("flowers")
        assert (version.ref, version.n_rows, version.target) == ("flowers:1", 3, "kind")
        assert [c.name for c in version.columns] == ["petal", "kind"]
        assert project.rows(version, 0, 10) == [
            (1.5, "a", None),
            (2.5, "b", None),
            (3.5, "a", None),
        ]
        assert project.jobs() == []  # the table added by m002 exists and works
        assert project.integrity_ok()
        backup = project.backup_path
    assert backup is not None and backup.exists()
    assert backup.read_bytes() == before
    assert not Project.needs_upgrade(v1_copy)


def test_each_migration_is_named_and_recorded_in_order(v1_copy: Path) -> None:
    with Project.open(v1_copy, upgrade=True) as project:
        rows = project.conn.execute("SELECT name FROM lepton_migrations ORDER BY rowid").fetchall()
    assert [r[0] for r in rows] == [m.__name__ for m in migrations.MIGRATIONS]
    assert rows[:2] == [("m001_initial",), ("m002_jobs",)]


def test_a_failing_migration_rolls_back_entirely(
    v1_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def m003_broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("migration bug")

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, m003_broken])
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", len(migrations.MIGRATIONS))
    with pytest.raises(RuntimeError, match="migration bug"):
        Project.open(v1_copy, upgrade=True)
    conn = sqlite3.connect(v1_copy)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "half_done" not in tables and "jobs" not in tables
    conn.close()
