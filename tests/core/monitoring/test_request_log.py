"""The request log browsed, exported, trimmed by retention, and its deployments deleted:
on real project files whose log was written by the journal shipper's own function."""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lepton_desktop.core.errors import InvalidOptionError, NotFoundError
from lepton_desktop.core.monitoring.requests import (
    EXPORT_COLUMNS,
    RequestFilter,
    Retention,
    parse_retention,
)
from lepton_desktop.core.project import Project
from lepton_desktop.core.store import serving as serving_store
from tests.helpers import snapshot
from tests.monitoring_factory import log_traffic
from tests.request_log_factory import NEW, OLD, logged_project

HOUR = 3600.0


@pytest.fixture
def logged(tmp_path: Path) -> Path:
    return logged_project(tmp_path / "p.lepton")


def ids(records: list) -> list[str]:
    return [r.request_id for r in records]


def test_filters_choose_rows_by_model_status_time_and_deployment(logged: Path) -> None:
    with Project.open(logged) as project:
        log = project.request_log
        assert ids(log.page(RequestFilter(model="iris-mlp"))) == [
            "iris-c", "iris-bad", "iris-b", "iris-a"]  # fmt: skip
        assert ids(log.page(RequestFilter(status="error"))) == ["diab-slow", "iris-bad"]
        assert ids(log.page(RequestFilter(status=504))) == ["diab-slow"]
        assert ids(log.page(RequestFilter(status="2xx", deployment_id=NEW))) == [
            "diab-b", "diab-a"]  # fmt: skip
        recent = RequestFilter(since=time.time() - 60)
        assert ids(log.page(recent)) == ["diab-b", "diab-slow", "diab-a"]
        older = RequestFilter(until=time.time() - 60, deployment_id=OLD)
        assert log.count(older) == 4
        assert log.page(RequestFilter(model="iris-mlp", version=2)) == []


def test_feedback_and_anomaly_filters(logged: Path) -> None:
    with Project.open(logged) as project:
        serving_store.add_feedback(project.conn, OLD, "iris-b", "setosa")
        log = project.request_log
        assert ids(log.page(RequestFilter(has_feedback=True))) == ["iris-b"]
        assert "iris-b" not in ids(log.page(RequestFilter(has_feedback=False)))
        assert log.count(RequestFilter(has_feedback=False)) == 6
        # the log's writer flags anomalies in request_anomalies (no drift reference here)
        flagged = project.serving.find_request("diab-a")
        project.conn.execute(
            "INSERT INTO request_anomalies (log_id, model, version, minute, kinds, rows) "
            "VALUES (?, 'diabetes-mlp', 1, 0, 1, 1)",
            (flagged.id,),
        )
        assert ids(log.page(RequestFilter(anomalous=True))) == ["diab-a"]


def test_keyset_pages_walk_the_whole_selection_once(tmp_path: Path) -> None:
    path = tmp_path / "p.lepton"
    Project.create(path).close()
    log_traffic(path, 2_500, start=time.time() - HOUR, seconds=HOUR, seed=1)
    with Project.open(path) as project:
        seen: list[int] = []
        before = None
        while page := project.request_log.page(RequestFilter(status="2xx"), before, 400):
            seen += [r.id for r in page]
            before = page[-1].id
        everything = project.conn.execute(
            "SELECT id FROM request_log WHERE status = 200 ORDER BY id DESC"
        ).fetchall()
        assert seen == [row[0] for row in everything]
        for where, args, index in [("r.model = ?", ("iris",), "request_log_by_model"),
                                   ("r.model = ? AND r.version = ?", ("iris", 1),
                                    "request_log_by_version")]:  # fmt: skip
            plan = " ".join(str(r) for r in project.conn.execute(
                f"EXPLAIN QUERY PLAN SELECT id FROM request_log r WHERE {where} AND r.id < ? "
                "ORDER BY r.id DESC LIMIT 10", (*args, 10**9)))  # fmt: skip
            assert index in plan and "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_export_reads_back_equal_to_the_log(logged: Path, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"requests.{suffix}"
    with Project.open(logged) as project:
        serving_store.add_feedback(project.conn, OLD, "iris-a", "setosa")
        selection = RequestFilter(model="iris-mlp")
        result = project.request_log.export(selection, out)
        logged_rows = project.request_log.page(selection)[::-1]
    assert result["rows"] == 4 and result["format"] == suffix and out.stat().st_size > 0
    assert not list(tmp_path.glob(".*partial"))
    if suffix == "csv":
        with open(out, newline="", encoding="utf-8") as handle:
            read = list(csv.DictReader(handle))
        assert list(read[0]) == list(EXPORT_COLUMNS)
    else:
        table = pq.read_table(out)
        assert table.column_names == list(EXPORT_COLUMNS)
        read = table.to_pylist()
    for row, record in zip(read, logged_rows, strict=True):
        assert int(row["id"]) == record.id and row["request_id"] == record.request_id
        assert float(row["ts"]) == record.ts and int(row["status"]) == record.status
        assert float(row["latency_ms"]) == record.latency_ms
        assert json.loads(row["inputs"]) == record.inputs
        assert (json.loads(row["outputs"]) if row["outputs"] else None) == record.outputs
        assert (row["error"] or None) == record.error
    assert json.loads(read[0]["labels"]) == {"0": "setosa"}
    assert not read[1]["labels"]


def test_export_streams_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "p.lepton"
    Project.create(path).close()
    log_traffic(path, 12_000, start=time.time() - HOUR, seconds=HOUR, seed=2)
    out = tmp_path / "all.parquet"
    with Project.open(path) as project:
        seen: list[tuple[int, int | None]] = []
        project.request_log.export(RequestFilter(), out, _Progress(seen))
    assert [done for done, _ in seen] == [5000, 10000, 12000]  # one update per chunk
    assert pq.ParquetFile(out).metadata.num_row_groups == 3
    assert pq.read_table(out, columns=["id"]).num_rows == 12_000


class _Progress:
    def __init__(self, seen: list[tuple[int, int | None]]) -> None:
        self.seen = seen

    def update(self, done: int, total: int | None, message: str = "") -> None:
        self.seen.append((done, total))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (".", "is a folder"),
        ("requests.json", "must end .csv or .parquet"),
        ("exists.csv", "exists; exports never replace a file"),
        ("missing/requests.csv", "is not a folder"),
    ],
)
def test_bad_export_paths_are_refused_and_nothing_changes(
    logged: Path, tmp_path: Path, name: str, message: str
) -> None:
    (tmp_path / "exists.csv").write_text("mine\n")
    before, files = snapshot(logged), sorted(tmp_path.rglob("*"))
    with Project.open(logged) as project, pytest.raises(InvalidOptionError, match=message):
        project.request_log.export(RequestFilter(), tmp_path / name)
    assert snapshot(logged) == before and sorted(tmp_path.rglob("*")) == files
    assert (tmp_path / "exists.csv").read_text() == "mine\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30d", Retention(30.0, None)), ("1000000rows", Retention(None, 1_000_000)),
     ("7d+5000rows", Retention(7.0, 5000)), ("off", Retention())],
)  # fmt: skip
def test_retention_texts(text: str, expected: Retention) -> None:
    assert parse_retention(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [("0d", "days must be 1 to"), ("12", "give days"), ("10rows", "rows must be a whole"),
     ("1.5rows", "whole number"), ("30 weeks", "give days")],
)  # fmt: skip
def test_bad_retention_is_refused_and_nothing_changes(logged: Path, text: str,
                                                      message: str) -> None:  # fmt: skip
    before = snapshot(logged)
    with Project.open(logged) as project, pytest.raises(InvalidOptionError, match=message):
        project.request_log.set_retention(text)
    assert snapshot(logged) == before


def test_retention_deletes_old_rows_in_batches_and_keeps_the_history(tmp_path: Path) -> None:
    path = tmp_path / "p.lepton"
    Project.create(path).close()
    now = time.time()
    log_traffic(path, 6_000, start=now - 3 * 86400, seconds=86400, seed=3)  # 2-3 days ago
    log_traffic(path, 1_000, start=now - HOUR, seconds=HOUR / 2, seed=4)  # the last hour
    with Project.open(path) as project:
        history = project.monitor("all", model="iris")
        project.request_log.set_retention("2d")
        statements: list[str] = []
        project.conn.set_trace_callback(statements.append)
        deleted = project.request_log.apply_retention(batch=2_000)
        project.conn.set_trace_callback(None)
        assert deleted == 6_000
        # three transactions, each deleting one batch (the last one finds nothing more);
        # SQLite traces a statement again for each trigger it fires: count it once
        watched = ("BEGIN", "COMMIT", "DELETE FROM request_log WHERE id BETWEEN")
        steps = [s.split()[0] for i, s in enumerate(statements)
                 if s.startswith(watched) and (i == 0 or statements[i - 1] != s)]  # fmt: skip
        steps = [s for i, s in enumerate(steps) if i == 0 or s != "DELETE" or steps[i - 1] != s]
        assert steps == ["BEGIN", "DELETE", "COMMIT"] * 3 + ["BEGIN", "COMMIT"]
        assert project.serving.request_count() == 1_000
        oldest = project.conn.execute("SELECT MIN(ts) FROM request_log").fetchone()[0]
        assert oldest >= now - HOUR
        after = project.monitor("all", model="iris")
        # the rollups keep the history: the same requests, latency, quality
        for key in ("requests", "errors", "latency_ms", "rows", "versions", "predictions"):
            assert after[key] == history[key], key
        assert after["quality"] == history["quality"]
        assert project.request_log.apply_retention() == 0  # nothing left to delete
        assert project.integrity_ok()


def test_retention_by_rows_keeps_the_newest_and_applies_on_open(tmp_path: Path) -> None:
    path = tmp_path / "p.lepton"
    Project.create(path).close()
    log_traffic(path, 3_000, start=time.time() - HOUR, seconds=HOUR, seed=5)
    with Project.open(path) as project:
        newest = project.conn.execute(
            "SELECT id FROM request_log ORDER BY id DESC LIMIT 1000"
        ).fetchall()
        project.request_log.set_retention("1000rows")
    with Project.open(path) as project:  # opening applies it
        kept = project.conn.execute("SELECT id FROM request_log ORDER BY id DESC").fetchall()
        assert kept == newest
        assert project.request_log.retention().label() == "1000rows"


def test_deleting_a_deployment_keeps_or_deletes_its_log_as_asked(logged: Path) -> None:
    with Project.open(logged) as project:
        history = project.monitor("all")
        project.serving.update(NEW, pid=os.getpid())  # this process: a running server
        with pytest.raises(InvalidOptionError, match="is running: stop its server first"):
            project.request_log.delete_deployment(NEW, keep_log=False)
        with pytest.raises(NotFoundError, match="no deployment 9"):
            project.request_log.delete_deployment(9, keep_log=True)
        assert project.request_log.delete_deployment(OLD, keep_log=True) == 0
        assert project.request_log.count(RequestFilter(deployment_id=OLD)) == 4
        assert [d.id for d in project.serving.list()] == [NEW]
        project.serving.update(NEW, status="stopped")
        assert project.request_log.delete_deployment(NEW, keep_log=False) == 3
        assert project.serving.request_count() == 4
        assert project.monitor("all")["requests"] == history["requests"]  # rollups kept
