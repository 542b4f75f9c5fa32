"""Monitoring reads what a real server logged: traffic from the rollups, quality from feedback.

One module-scoped run serves the trained iris and diabetes models on 127.0.0.1, sends
real requests (good, bad, in batches) and feedback with httpx, and stops; the tests
compare ``Project.monitor`` with the request log itself (counted in SQL here), with
numpy's percentiles of the logged latencies, and with scikit-learn's metrics computed
from what the client received.
"""

from __future__ import annotations

import csv
import json
import math
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn import metrics

from lepton_desktop.core.errors import InvalidOptionError, NotFoundError
from lepton_desktop.core.monitoring import quality, traffic, window
from lepton_desktop.core.project import Project
from lepton_desktop.core.store import migrations, rollups
from lepton_desktop.core.store import monitoring as monitoring_store
from lepton_desktop.core.store import serving as serving_store
from tests.conftest import SAMPLE_DATA
from tests.monitoring_factory import log_traffic
from tests.serving_factory import copy_project, rows, running, serving_project  # noqa: F401

pytestmark = pytest.mark.slow


def _targets(name: str, target: str) -> list[str]:
    with open(SAMPLE_DATA / name, newline="") as handle:
        return [r[target] for r in csv.DictReader(handle)]


class Traffic:
    """What the client sent and got back."""

    def __init__(self) -> None:
        self.iris_truth: list[str] = []
        self.iris_predicted: list[str] = []
        self.diabetes_truth: list[float] = []
        self.diabetes_predicted: list[float] = []
        self.bad = 0
        self.requests = 0


@pytest.fixture(scope="module")
def monitored(serving_project: Path, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
              ) -> Iterator[tuple[Path, Traffic]]:  # fmt: skip
    project = copy_project(serving_project, tmp_path_factory.mktemp("monitored"))
    sent = Traffic()
    iris, iris_y = rows(), _targets("iris.csv", "species")
    diabetes = rows("diabetes.csv", "progression")
    diabetes_y = [float(v) for v in _targets("diabetes.csv", "progression")]
    with running(project) as runner, httpx.Client(base_url=runner.url, timeout=10) as client:
        for start in range(0, 120, 3):  # 40 requests of 1..3 rows
            batch = iris[start : start + 1 + start % 3]
            answer = client.post("/predict", json={"model": "iris", "records": batch})
            assert answer.status_code == 200, answer.text
            sent.requests += 1
            request_id = answer.headers["x-request-id"]
            for row, prediction in enumerate(answer.json()["predictions"]):
                truth = iris_y[start + row]
                sent.iris_truth.append(truth)
                sent.iris_predicted.append(prediction["label"])
                fed = client.post("/feedback", json={"request_id": request_id, "label": truth,
                                                     "row": row})  # fmt: skip
                assert fed.status_code == 200, fed.text
        for i in range(30):
            answer = client.post("/predict", json={"model": "diabetes", "records": [diabetes[i]]})
            assert answer.status_code == 200, answer.text
            sent.requests += 1
            sent.diabetes_truth.append(diabetes_y[i])
            sent.diabetes_predicted.append(answer.json()["predictions"][0]["value"])
            client.post("/feedback", json={"request_id": answer.headers["x-request-id"],
                                           "label": diabetes_y[i]})  # fmt: skip
        for _ in range(5):  # a missing feature: 400
            answer = client.post("/predict", json={"model": "iris", "records": [{"x": 1}]})
            assert answer.status_code == 400
            sent.bad += 1
            sent.requests += 1
    yield project, sent


def _logged(project: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(project)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def test_traffic_totals_match_the_request_log(monitored: tuple[Path, Traffic]) -> None:
    project, sent = monitored
    with Project.open(project) as opened:
        report = opened.monitor("all")
        iris = opened.monitor("all", model="iris")
    (logged,) = _logged(project, "SELECT COUNT(*) FROM request_log WHERE model IS NOT NULL")
    assert report["requests"] == logged[0] == sent.requests
    assert report["errors"] == {"4xx": sent.bad, "5xx": 0}
    feedback = len(sent.iris_truth) + len(sent.diabetes_truth)
    assert report["other"] == {"requests": feedback, "errors": {"4xx": 0, "5xx": 0}}
    assert report["rows"] == len(sent.iris_truth) + len(sent.diabetes_truth)
    assert iris["requests"] == 40 + sent.bad
    assert iris["versions"] == {"iris:2": iris["requests"]}  # the latest version served
    shares = {label: sent.iris_predicted.count(label) / len(sent.iris_predicted)
              for label in set(sent.iris_predicted)}  # fmt: skip
    assert iris["predictions"] == pytest.approx(shares)
    with Project.open(project) as opened:
        diabetes = opened.monitor("all", model="diabetes")
    assert diabetes["predictions"]["mean"] == pytest.approx(np.mean(sent.diabetes_predicted))
    assert diabetes["predictions"]["max"] == pytest.approx(max(sent.diabetes_predicted))


def test_latency_percentiles_within_one_bucket_of_the_logged_values(
    monitored: tuple[Path, Traffic],
) -> None:
    project, _ = monitored
    logged = _logged(project, "SELECT latency_ms FROM request_log WHERE model IS NOT NULL")
    latencies = np.array([r[0] for r in logged])
    with Project.open(project) as opened:
        latency = opened.monitor("all")["latency_ms"]
    for p in (50, 95, 99):
        exact = np.percentile(latencies, p, method="inverted_cdf")
        # The histogram's buckets are 2^(1/4) wide: an estimate inside the right bucket
        # is at most that factor off.
        assert abs(math.log(latency[f"p{p}"] / exact)) <= math.log(2**0.25) + 1e-9
    assert latency["mean"] == pytest.approx(latencies.mean())


def test_live_quality_agrees_with_scikit_learn(monitored: tuple[Path, Traffic]) -> None:
    project, sent = monitored
    with Project.open(project) as opened:
        iris = opened.monitor("all", model="iris")["quality"]
        diabetes = opened.monitor("all", model="diabetes")["quality"]
    truth, predicted = sent.iris_truth, sent.iris_predicted
    assert iris["labelled"] == len(truth)
    assert iris["metrics"]["accuracy"] == pytest.approx(metrics.accuracy_score(truth, predicted))
    p, r, f, _ = metrics.precision_recall_fscore_support(truth, predicted, average="macro",
                                                          zero_division=0)  # fmt: skip
    assert (iris["metrics"]["precision"], iris["metrics"]["recall"], iris["metrics"]["f1"]) == \
        pytest.approx((p, r, f))  # fmt: skip
    labels = iris["labels"]
    assert iris["confusion"] == metrics.confusion_matrix(truth, predicted, labels=labels).tolist()
    y, y_hat = sent.diabetes_truth, sent.diabetes_predicted
    assert diabetes["labelled"] == len(y)
    assert diabetes["metrics"]["mae"] == pytest.approx(metrics.mean_absolute_error(y, y_hat))
    rmse = math.sqrt(metrics.mean_squared_error(y, y_hat))
    assert diabetes["metrics"]["rmse"] == pytest.approx(rmse)
    assert diabetes["metrics"]["r2"] == pytest.approx(metrics.r2_score(y, y_hat))


def test_too_few_labels_claim_no_metric() -> None:
    cells = [("a", "a", 12), ("b", "a", 7)]
    few = quality.classification(cells)
    assert few.labelled == 19 and set(few.metrics.values()) == {None}
    assert few.confusion == [[12, 0], [7, 0]]
    enough = quality.classification([*cells, ("b", "b", 1)])
    assert enough.metrics["accuracy"] == pytest.approx(13 / 20)
    assert set(quality.regression(3, 1.0, 1.0, 3.0, 5.0).metrics.values()) == {None}


def test_unknown_model_is_refused(monitored: tuple[Path, Traffic]) -> None:
    project, _ = monitored
    refused = pytest.raises(NotFoundError, match=r"'nope'.*served: diabetes, iris")
    with Project.open(project) as opened, refused:
        opened.monitor("all", model="nope")


@pytest.mark.parametrize("text", ["", "yesterday", "0m", "-1h", "nanh", "11000d"])
def test_unreadable_windows_are_refused(text: str) -> None:
    with pytest.raises(InvalidOptionError, match="--since"):
        window.parse(text)


def test_named_windows() -> None:
    assert window.parse("15m", now=10_000.0) == window.Window(10_000.0 - 900, 10_000.0, "15m")
    assert window.parse("all", now=5.0).since is None
    assert window.parse("2w", now=0.0).seconds == 14 * 86400


def test_quantiles_of_a_histogram() -> None:
    bounds = np.asarray(rollups.LATENCY_BUCKETS)
    values = np.random.default_rng(0).lognormal(0, 1, 10_000)
    histogram = np.zeros((1, len(bounds)))
    np.add.at(histogram[0], np.searchsorted(bounds, values), 1)
    for q in (0.5, 0.9, 0.99):
        estimate = traffic.quantiles(histogram, bounds, q)[0]
        assert abs(math.log(estimate / np.quantile(values, q))) <= math.log(2**0.25)
    assert np.isnan(traffic.quantiles(np.zeros((1, len(bounds))), bounds, 0.5)[0])


def _insert(conn: sqlite3.Connection, outputs: list[str | None]) -> None:
    rows = [(1, 1000.0 + 7 * i, f"r{i}", "POST", "/predict", "native", "m", 1, 200,
             0.3 * (i + 1), 1, None, out, None) for i, out in enumerate(outputs)]  # fmt: skip
    serving_store.ship_journal(conn, rows[:20], [])  # two batches, as a shipper would
    serving_store.ship_journal(conn, rows[20:], [])


def _rollups(conn: sqlite3.Connection) -> tuple[list[Any], list[Any]]:
    requests = conn.execute("SELECT * FROM request_minutes ORDER BY 1, 2, 3, 4, 5").fetchall()
    predictions = conn.execute("SELECT * FROM prediction_minutes ORDER BY 1, 2, 3, 4").fetchall()
    return requests, predictions


OUTPUTS = [
    json.dumps([{"label": "a"}, {"label": "b"}]),
    json.dumps([{"value": 2.5}]),
    "not json",
    '{"label": "x"}',
    '["x", 3]',
    None,
    json.dumps([{"label": 7}]),
] * 5


def test_upgrade_rolls_up_the_existing_log_as_shipping_would(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "old.lepton", isolation_level=None)
    migrations.initialize(old, migrations.MIGRATIONS[:6])
    old.executemany(  # what a schema-6 server logged
        "INSERT INTO request_log (deployment_id, ts, request_id, method, path, protocol, model, "
        "version, status, latency_ms, n_rows, inputs, outputs, error) "
        "VALUES (1, ?, ?, 'POST', '/predict', 'native', 'm', 1, 200, ?, 1, NULL, ?, NULL)",
        [(1000.0 + 7 * i, f"r{i}", 0.3 * (i + 1), out) for i, out in enumerate(OUTPUTS)],
    )
    old.execute("INSERT INTO feedback (deployment_id, request_id, ts, label, row) "
                "VALUES (1, 'r0', 2000.0, '\"b\"', 1)")  # fmt: skip
    migrations.upgrade(old)
    new = sqlite3.connect(tmp_path / "new.lepton", isolation_level=None)
    migrations.initialize(new)
    _insert(new, OUTPUTS)  # malformed outputs never make a batch fail
    assert _rollups(old) == _rollups(new)
    assert monitoring_store.confusion(old, "m", None, 0.0, 1e9) == [("b", "b", 1)]
    requests, predictions = _rollups(new)
    assert sum(r[5] for r in requests) == len(OUTPUTS)
    assert {r[3]: r[4] for r in predictions if r[2] == 16} == {"a": 1, "b": 1, "": 1}


def test_long_windows_read_the_hourly_rollups_with_the_same_totals(tmp_path: Path) -> None:
    path = tmp_path / "ten-days.lepton"
    Project.create(path).close()
    log_traffic(path, 20_000, start=1_700_000_000.0, seconds=10 * 86400, seed=4)
    with Project.open(path) as opened:
        everything, series = opened.monitor_view(window.between(1_699_999_000.0, 1_701_000_000.0))
    assert series.bin_seconds == 2 * 3600  # 11.6 days in bins of whole hours
    (requests, rows, errors), = _logged(
        path, "SELECT COUNT(*), SUM(n_rows), SUM(status >= 400) FROM request_log")
    assert (everything["requests"], everything["rows"]) == (requests, rows)
    assert everything["errors"]["4xx"] == errors
    assert series.requests.sum() == requests
    latencies = np.array([r[0] for r in _logged(path, "SELECT latency_ms FROM request_log")])
    for p in (50, 99):
        exact = np.percentile(latencies, p, method="inverted_cdf")
        assert abs(math.log(everything["latency_ms"][f"p{p}"] / exact)) <= math.log(2**0.25)


def _answer(request_id: str, ts: float, label: str) -> tuple[Any, ...]:
    return (1, ts, request_id, "POST", "/predict", "native", "m", 1, 200, 1.0, 2, None,
            json.dumps([{"label": "x"}, {"label": label}]), None)  # fmt: skip


def test_labels_count_once_newest_first_whatever_order_journals_ship_in(tmp_path: Path) -> None:
    path = tmp_path / "labels.lepton"
    Project.create(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    # A label shipped before its answer (another server process's journal comes later).
    serving_store.ship_journal(conn, [], [(1, "early", 100.0, json.dumps("b"), 1)])
    serving_store.ship_journal(conn, [_answer("early", 90.0, "b")], [])
    # A row labelled twice: the newer label counts, whichever batch it came in.
    serving_store.ship_journal(conn, [_answer("twice", 95.0, "a")],
                               [(1, "twice", 101.0, json.dumps("b"), 1)])  # fmt: skip
    serving_store.ship_journal(conn, [], [(1, "twice", 102.0, json.dumps("a"), 1),
                                          (1, "twice", 99.0, json.dumps("zzz"), 1)])  # fmt: skip
    # A label for an answer whose outputs were not captured, and one for an error.
    serving_store.ship_journal(
        conn, [(1, 96.0, "blind", "POST", "/predict", "native", "m", 1, 200, 1.0, 1, None, None,
                None)], [(1, "blind", 103.0, json.dumps("a"), 0)])  # fmt: skip
    cells = sorted(monitoring_store.confusion(conn, "m", None, 0.0, 1000.0))
    assert cells == [("a", "a", 1), ("b", "b", 1)]
    conn.close()


def test_a_read_imports_neither_torch_nor_scipy_once_a_version_is_known_unprofiled(
    tmp_path: Path,
) -> None:
    """The tab re-reads every 2 s on the GUI's DB thread: a version whose training data is
    gone is looked at once (its reason stored), not with torch and scipy on every read."""
    import subprocess
    import sys

    path = tmp_path / "unprofiled.lepton"
    Project.create(path).close()
    log_traffic(path, 500, start=1_700_000_000.0, seconds=600, seed=9)
    with Project.open(path) as opened:  # the first read finds "iris" unregistered
        first = opened.monitor_view(window.parse("all"))[0]
    code = (
        "import sys\nfrom lepton_desktop.core.project import Project\n"
        "from lepton_desktop.core.monitoring import window\n"
        f"report, _ = Project.open({str(path)!r}).monitor_view(window.parse('all'))\n"
        "print(report['requests'], 'torch' in sys.modules, 'scipy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()  # fmt: skip
    assert out == [str(first["requests"]), "False", "False"]
