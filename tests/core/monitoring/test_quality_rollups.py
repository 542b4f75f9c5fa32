"""Live quality read from the per-minute rollups agrees with scikit-learn on the raw rows.

A project logs classification answers of two versions and regression answers, with
labels shipped before and after their answers, rows labelled twice, several rows per
request (ties in answer time), and answer times on minute boundaries. For random time
and count windows, the metrics read from the rollups (plus the raw edges) equal
scikit-learn's on the counted feedback rows themselves, also after forget, a deleted
deployment's log and retention; the rollups always equal a plain aggregate of the
counted rows, and the migration builds them from feedback stored before it.
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from lepton_desktop.core import privacy
from lepton_desktop.core.monitoring import quality
from lepton_desktop.core.monitoring.window import Window
from lepton_desktop.core.project import Project
from lepton_desktop.core.store import migrations, quality_rollups
from lepton_desktop.core.store import monitoring as monitoring_store
from lepton_desktop.core.store import request_log as log_store
from lepton_desktop.core.store import serving as serving_store
from lepton_desktop.core.store.db import connect

CLASSES = ("a", "b", "c", "d")
START = 1_700_000_000.0
SPAN = 3 * 3600.0
MINUTE = 60.0 * math.ceil(START / 60)  # the first minute's start


def _traffic(seed: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Request rows and feedback rows (``ship_journal``'s shapes) over three hours."""
    rng = np.random.default_rng(seed)
    requests, feedback = [], []
    for i in range(1500):
        ts = START + float(rng.uniform(0, SPAN))
        if i % 50 == 0:
            ts = START + 60 * int(rng.integers(0, SPAN // 60))  # exactly on a minute
        deployment = 1 + (i // 7) % 2
        rid = f"r{i}"
        if i % 3 == 2:  # a regressor
            values = rng.normal(10, 3, 2)
            outputs = [{"value": float(v)} for v in values]
            labels = [float(v + rng.normal(0, 1)) for v in values]
            model, version = "reg", 1
        else:
            predicted = rng.choice(CLASSES, 2, p=[0.5, 0.3, 0.15, 0.05])
            outputs = [{"label": str(p)} for p in predicted]
            labels = [str(p) if rng.random() < 0.7 else str(rng.choice(CLASSES))
                      for p in predicted]  # fmt: skip
            model, version = "cls", 1 + i % 2
        requests.append((deployment, ts, rid, "POST", "/predict", "native", model, version,
                         200, 1.0, 2, None, json.dumps(outputs), None))  # fmt: skip
        for row, label in enumerate(labels):
            if rng.random() < 0.8:
                feedback.append((deployment, rid, ts + 5, json.dumps(label), row))
            if rng.random() < 0.1:  # a second label, later: the newest counts
                other = str(rng.choice(CLASSES)) if model == "cls" else label + 1.0
                feedback.append((deployment, rid, ts + 9, json.dumps(other), row))
    return requests, feedback


def _ship(path: Path, seed: int = 0) -> None:
    requests, feedback = _traffic(seed)
    conn = connect(path)
    try:
        # labels that arrive before their answers, then batches as a shipper sends them
        serving_store.ship_journal(conn, [], feedback[:100])
        for first in range(0, len(requests), 400):
            serving_store.ship_journal(conn, requests[first : first + 400],
                                       feedback[100 + first : 100 + first + 400])  # fmt: skip
        serving_store.ship_journal(conn, [], feedback[100 + len(requests) :])
    finally:
        conn.close()


@pytest.fixture
def logged(tmp_path: Path) -> Path:
    path = tmp_path / "quality.lepton"
    Project.create(path).close()
    _ship(path)
    return path


_COUNTED = "model = ? AND superseded = 0 AND request_ts IS NOT NULL AND {}"
_CLASSIFIED = "truth IS NOT NULL AND predicted IS NOT NULL"
_VALUED = "truth_value IS NOT NULL AND predicted_value IS NOT NULL"


def _raw(conn: sqlite3.Connection, model: str, version: int | None, labelled: str,
         columns: str) -> list[tuple[Any, ...]]:  # fmt: skip
    """The counted rows, newest first (answer time, then id), read from feedback itself."""
    sql = f"SELECT request_ts, {columns} FROM feedback WHERE {_COUNTED.format(labelled)}"
    args: tuple[Any, ...] = (model,)
    if version:
        sql, args = sql + " AND version = ?", (model, version)
    return conn.execute(sql + " ORDER BY request_ts DESC, id DESC", args).fetchall()


def _check_classification(found: quality.Quality, pairs: list[tuple[str, str]]) -> None:
    truth, predicted = [t for t, _ in pairs], [p for _, p in pairs]
    assert found.labelled == len(pairs)
    if len(pairs) < quality.MIN_LABELLED:
        return
    labels = sorted(set(truth) | set(predicted))
    assert found.labels == labels
    assert found.confusion == skm.confusion_matrix(truth, predicted, labels=labels).tolist()
    assert found.metrics["accuracy"] == pytest.approx(skm.accuracy_score(truth, predicted))
    macro = skm.precision_recall_fscore_support(truth, predicted, average="macro",
                                                zero_division=0)  # fmt: skip
    for name, value in zip(("precision", "recall", "f1"), macro[:3], strict=True):
        assert found.metrics[name] == pytest.approx(value)
    per = skm.precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0)
    for i, label in enumerate(labels):
        assert found.per_class[label] == pytest.approx(
            {"precision": per[0][i], "recall": per[1][i], "f1": per[2][i], "support": per[3][i]}
        )


def _check_regression(found: quality.Quality, pairs: list[tuple[float, float]]) -> None:
    assert found.labelled == len(pairs)
    if len(pairs) < quality.MIN_LABELLED:
        return
    y, predicted = np.array([t for t, _ in pairs]), np.array([p for _, p in pairs])
    assert found.metrics["mae"] == pytest.approx(skm.mean_absolute_error(y, predicted))
    assert found.metrics["rmse"] == pytest.approx(skm.root_mean_squared_error(y, predicted))
    assert found.metrics["r2"] == pytest.approx(skm.r2_score(y, predicted), abs=1e-9)


def _check_windows(path: Path, seed: int) -> None:
    """Random time and count windows of each model (and version) against scikit-learn."""
    rng = np.random.default_rng(seed)
    with Project.open(path) as project:
        conn = project.ctx.conn
        for model, version, kind in (("cls", None, "classification"),
                                     ("cls", 2, "classification"),
                                     ("reg", None, "regression")):  # fmt: skip
            classified = kind == "classification"
            labelled, columns = ((_CLASSIFIED, "truth, predicted") if classified
                                 else (_VALUED, "truth_value, predicted_value"))  # fmt: skip
            rows = _raw(conn, model, version, labelled, columns)
            check = _check_classification if classified else _check_regression
            windows = [(-math.inf, START + SPAN + 60)]
            for _ in range(12):
                since, until = sorted(START + rng.uniform(-60, SPAN + 60, 2))
                windows.append((float(since), float(until)))
            windows.append((START + 600.0, START + 1200.0))  # whole minutes only
            windows.append((START + 610.5, START + 640.25))  # inside one minute
            for since, until in windows:
                window = Window(None if since == -math.inf else since, until, "range")
                found = quality.live_quality(project.ctx, window, model, version, kind)
                check(found, [(t, p) for ts, t, p in rows if since <= ts < until])
            for count in (1, 7, 25, int(rng.integers(30, max(31, len(rows)))), len(rows) + 5):
                found = quality.last_labelled(project.ctx, model, version, kind, count)
                check(found, [(t, p) for _, t, p in rows[:count]])


def _rollups_match_the_rows(path: Path) -> None:
    """Each rollup equals a plain aggregate of the counted feedback rows."""
    conn = sqlite3.connect(path)
    try:
        labels = conn.execute(
            "SELECT model, CAST(request_ts / 60 AS INTEGER), version, truth, predicted, "
            f"COUNT(*) FROM feedback WHERE superseded = 0 AND model IS NOT NULL AND "
            f"{_CLASSIFIED} GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5"
        ).fetchall()
        assert conn.execute("SELECT * FROM label_minutes ORDER BY 1, 2, 3, 4, 5").fetchall() \
            == labels  # fmt: skip
        errors = conn.execute(
            "SELECT model, CAST(request_ts / 60 AS INTEGER), version, COUNT(*), "
            "TOTAL(ABS(truth_value - predicted_value)), TOTAL(truth_value) FROM feedback "
            f"WHERE superseded = 0 AND model IS NOT NULL AND {_VALUED} GROUP BY 1, 2, 3 "
            "ORDER BY 1, 2, 3"
        ).fetchall()
        kept = conn.execute("SELECT model, minute, version, n, abs_sum, y_sum FROM error_minutes "
                            "ORDER BY 1, 2, 3").fetchall()  # fmt: skip
        assert [r[:4] for r in kept] == [r[:4] for r in errors]
        for ours, theirs in zip(kept, errors, strict=True):
            assert ours[4:] == pytest.approx(theirs[4:], rel=1e-9, abs=1e-9)
    finally:
        conn.close()


def test_windows_read_from_the_rollups_agree_with_scikit_learn(logged: Path) -> None:
    conn = sqlite3.connect(logged)
    (superseded,) = conn.execute("SELECT COUNT(*) FROM feedback WHERE superseded = 1").fetchone()
    conn.close()
    assert superseded > 20  # the data exercises labels replaced by newer ones
    _rollups_match_the_rows(logged)
    _check_windows(logged, seed=1)


def test_forget_a_deleted_log_and_retention_keep_rollups_and_rows_in_step(logged: Path) -> None:
    with Project.open(logged) as project:
        forgotten = privacy.forget_requests(project.ctx, since=START + 1800, until=START + 3600)
        assert forgotten["feedback_deleted"] > 50
        privacy.forget_requests(project.ctx, request_id="r7")
        project.request_log.set_retention("1000rows")
        assert project.request_log.apply_retention() > 0  # log rows go, feedback stays
        assert log_store.delete_deployment(project.ctx.conn, 2, keep_log=False) > 100
    _rollups_match_the_rows(logged)
    _check_windows(logged, seed=2)
    # labels sent after all that are counted too
    conn = connect(logged)
    serving_store.ship_journal(conn, [], [(1, "r1499", START + SPAN, json.dumps("a"), 0)])
    conn.close()
    _rollups_match_the_rows(logged)


def test_the_migration_builds_the_rollups_from_stored_feedback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.lepton"
    conn = connect(path)
    before = migrations.MIGRATIONS.index(migrations.m019_live_quality_rollups)
    migrations.initialize(conn, migrations.MIGRATIONS[:before])
    conn.close()
    _ship(path, seed=3)
    monkeypatch.setattr(quality_rollups, "BACKFILL_BATCH", 97)  # many batches
    conn = connect(path)
    assert "m019_live_quality_rollups" in migrations.upgrade(conn)
    conn.close()
    _rollups_match_the_rows(path)
    _check_windows(path, seed=4)


def test_the_chart_bins_read_from_the_rollups_equal_the_raw_rows(logged: Path) -> None:
    """Accuracy (MAE) per bin of the Live quality chart: bins of whole minutes read the
    rollup, others the raw rows; both equal a plain count of the rows in each bin."""
    with Project.open(logged) as project:
        conn = project.ctx.conn
        for model, classified in (("cls", True), ("reg", False)):
            labelled, columns = ((_CLASSIFIED, "truth = predicted") if classified
                                 else (_VALUED, "ABS(truth_value - predicted_value)"))  # fmt: skip
            rows = _raw(conn, model, None, labelled, columns)
            for since, until, width in ((MINUTE - 120, START + SPAN - 30.5, 600.0),
                                        (MINUTE + 1200, START + 2000.25, 60.0),
                                        (START + 7.5, START + 5000, 450.0)):  # fmt: skip
                expected: dict[int, list[float]] = {}
                for ts, score in rows:
                    if since <= ts < until:
                        cell = expected.setdefault(int((ts - since) // width), [0, 0.0])
                        cell[0], cell[1] = cell[0] + 1, cell[1] + score
                found = monitoring_store.quality_bins(conn, model, None, since, until, width,
                                                      classified)  # fmt: skip
                assert [b for b, _, _ in found] == sorted(expected)
                for index, count, total in found:
                    assert count == expected[index][0]
                    assert total == pytest.approx(expected[index][1])
