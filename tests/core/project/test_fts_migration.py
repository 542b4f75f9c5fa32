"""m009: full-text search of the request log and the datasets, on files old and new.

The old file is a real schema-6 project (the first six migrations, as the release
before wrote them) holding logged requests and a dataset; it is upgraded as a user's
file is, and its existing rows must be found at once, new rows as soon as they land.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from lepton_desktop.core.project import Project
from lepton_desktop.core.store import migrations
from lepton_desktop.core.store import serving as serving_store
from lepton_desktop.core.store.db import checkpoint, connect, transaction
from tests.conftest import SAMPLE_DATA

M007 = "m009_full_text_search"


def _request(deployment_id: int, request_id: str, **fields: object) -> dict[str, object]:
    row: dict[str, object] = {
        "deployment_id": deployment_id, "ts": time.time(), "request_id": request_id,
        "method": "POST", "path": "/predict", "protocol": "predict", "model": "iris-mlp",
        "version": 1, "status": 200, "latency_ms": 1.0, "n_rows": 1,
        "inputs": [{"sepal_length": 5.1}], "outputs": [{"label": "setosa"}],
    }  # fmt: skip
    return row | fields


@pytest.fixture
def schema6(tmp_path: Path) -> Path:
    """A project at schema 8 (before m009) with a dataset, a deployment and 3 requests."""
    path = tmp_path / "old.lepton"
    conn = connect(path)
    migrations.initialize(conn, migrations.MIGRATIONS[:8])
    with transaction(conn):
        conn.execute(
            "INSERT INTO datasets (id, name, kind, created_at) VALUES (1, 'churn', 'tabular', 0)"
        )
        conn.execute(
            "INSERT INTO deployments (id, host, port, status, created_at) "
            "VALUES (1, '127.0.0.1', 8765, 'stopped', 0)"
        )
    rows = [
        _request(1, "old-1"),
        _request(1, "old-2", status=400, error="record 0: missing feature 'petal_width'"),
        _request(1, "old-3", model="diabetes-mlp", inputs=[{"age": 59, "bmi": 32.1}]),
    ]
    # Rows as the schema-8 writer stored them (today's writer keeps newer tables too).
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with transaction(conn):
        conn.executemany(
            f"INSERT INTO request_log ({', '.join(fields)}) "
            f"VALUES ({', '.join('?' * len(fields))})",
            [[json.dumps(r[f]) if f in ("inputs", "outputs") else r.get(f) for f in fields]
             for r in rows],
        )  # fmt: skip
    checkpoint(conn)
    conn.close()
    return path


def _ids(records: list) -> list[str]:
    return [r.request_id for r in records]


def test_an_old_file_upgrades_and_its_existing_rows_are_searchable(schema6: Path) -> None:
    assert Project.needs_upgrade(schema6)
    with Project.open(schema6, upgrade=True) as project:
        assert project.upgraded_from == 8 and project.schema_version == migrations.SCHEMA_VERSION
        search = project.serving.list_requests
        assert _ids(search(search="petal_width")) == ["old-2"]  # error text
        assert _ids(search(search="400")) == ["old-2"]  # status
        assert _ids(search(search="diabetes")) == ["old-3"]  # model name
        assert _ids(search(search="bmi")) == ["old-3"]  # captured inputs
        assert _ids(search(search="setosa")) == ["old-3", "old-2", "old-1"]  # outputs
        names = project.conn.execute(
            "SELECT rowid FROM datasets_fts WHERE datasets_fts MATCH 'churn'"
        ).fetchall()
        assert names == [(1,)]
        rows = project.conn.execute("SELECT name FROM lepton_migrations").fetchall()
        assert (M007,) in rows
        assert project.integrity_ok()


def test_triggers_index_new_updated_and_deleted_rows(schema6: Path) -> None:
    with Project.open(schema6, upgrade=True) as project:
        conn = project.conn
        serving_store.add_requests(conn, [_request(1, "new-1", error="timeout after 30 s")])
        shipped = [tuple(
            serving_store._request_value(_request(1, f"new-{i}", model="nile-rnn"), f)
            for f in serving_store._REQUEST_FIELDS
        ) for i in range(2, 1203)]  # fmt: skip
        # Counted: the log's rows stored, not the index's; shipped again, none.
        assert serving_store.ship_journal(conn, shipped, []) == 1201
        assert serving_store.ship_journal(conn, shipped, []) == 0
        search = project.serving.list_requests
        assert _ids(search(search="timeout")) == ["new-1"]
        assert _ids(search(search="nile", limit=2)) == ["new-1202", "new-1201"]
        assert len(search(search="nile", limit=5000)) == 1201
        with transaction(conn):
            conn.execute("UPDATE request_log SET error = 'gone' WHERE request_id = 'new-1'")
            conn.execute("DELETE FROM request_log WHERE request_id = 'old-3'")
        assert search(search="timeout") == []
        assert _ids(search(search="gone")) == ["new-1"]
        assert search(search="diabetes") == []
        project.import_dataset(
            SAMPLE_DATA / "iris.csv", "flowers", target="species"
        )
        found = conn.execute(
            "SELECT d.name FROM datasets_fts JOIN datasets d ON d.id = datasets_fts.rowid "
            "WHERE datasets_fts MATCH 'flowers'"
        ).fetchall()
        assert found == [("flowers",)]
        # FTS5's own check: the index holds exactly what the rows say.
        for table in ("request_log_fts", "datasets_fts", "dataset_versions_fts"):
            conn.execute(f"INSERT INTO {table} ({table}) VALUES ('integrity-check')")


def test_a_new_project_has_the_indexes_and_only_the_start_of_big_inputs_is_indexed(
    tmp_project: Path,
) -> None:
    with Project.open(tmp_project) as project:
        conn = project.conn
        with transaction(conn):
            conn.execute(
                "INSERT INTO deployments (id, host, port, status, created_at) "
                "VALUES (1, '127.0.0.1', 8765, 'stopped', 0)"
            )
        far = "x" * migrations.SEARCHED_CHARS + " needle"
        serving_store.add_requests(conn, [
            _request(1, "big", inputs=[{"image": far}]),
            _request(1, "small", inputs=[{"note": "needle"}]),
        ])  # fmt: skip
        assert _ids(project.serving.list_requests(search="needle")) == ["small"]
        stored = conn.execute("SELECT inputs FROM request_log WHERE request_id = 'big'")
        assert "needle" in stored.fetchone()[0]  # the row keeps all of it


def test_a_failure_after_m009_rolls_the_whole_upgrade_back(
    schema6: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def m008_broken(conn: sqlite3.Connection) -> None:
        raise RuntimeError("migration bug")

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, m008_broken])
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", len(migrations.MIGRATIONS))
    with pytest.raises(RuntimeError, match="migration bug"):
        Project.open(schema6, upgrade=True)
    conn = sqlite3.connect(f"{schema6.as_uri()}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 8
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert not {n for n in names if n.endswith("_fts") or "searchable" in n}
        columns = {r[1] for r in conn.execute("PRAGMA table_xinfo(request_log)")}
        assert "searchable_inputs" not in columns
        assert conn.execute("SELECT COUNT(*) FROM request_log").fetchone()[0] == 3
    finally:
        conn.close()
