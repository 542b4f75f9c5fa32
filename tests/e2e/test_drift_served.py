"""Drift and anomalies of a real server's traffic: shifted inputs from a real client.

The trained serving project is served on 127.0.0.1 by a real server process; httpx
sends iris rows as they are, then with ``petal_length`` shifted, then a few absurd
ones, and diabetes rows with ``bmi`` scaled. ``iris:2`` has its drift reference before
the server starts (the shipper sketches its rows as they arrive, as under ``serve``);
``diabetes:1`` gets its reference when first read (its logged rows taken in then).
Both paths must give the same counts, ``monitor --json`` must carry the drift rows and
the anomalies, and the flagged requests must be the client's own.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from lepton_desktop.core.monitoring import reference
from lepton_desktop.core.project import Project
from lepton_desktop.core.store import drift as drift_store
from lepton_desktop.core.store import drift_sketch
from tests.serving_factory import copy_project, rows, running, serving_project  # noqa: F401

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(serving_project: Path, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
           ) -> Iterator[tuple[Path, dict[str, Any]]]:  # fmt: skip
    project = copy_project(serving_project, tmp_path_factory.mktemp("drift-served"))
    with Project.open(project) as opened:
        reference.ensure(opened.ctx, "iris", 2)
    iris, diabetes = rows(), rows("diabetes.csv", "progression")
    sent: dict[str, Any] = {"absurd": [], "all": []}
    with running(project) as runner, httpx.Client(base_url=runner.url, timeout=10) as client:
        def predict(model: str, records: list[dict[str, Any]]) -> str:
            answer = client.post("/predict", json={"model": model, "records": records})
            assert answer.status_code == 200, answer.text
            sent["all"].append(answer.headers["x-request-id"])
            return str(answer.headers["x-request-id"])

        for start in range(0, 150, 5):
            predict("iris", iris[start : start + 5])
        for start in range(0, 150, 5):
            shifted = [{**r, "petal_length": str(float(r["petal_length"]) + 2.5)}
                       for r in iris[start : start + 5]]  # fmt: skip
            predict("iris", shifted)
        for _ in range(5):
            sent["absurd"].append(predict("iris", [{**iris[0], "sepal_length": "80"}]))
        for i in range(60):
            record = dict(diabetes[i])
            if i % 2:
                record["bmi"] = str(float(record["bmi"]) * 1.5)
            predict("diabetes", [record])
    yield project, sent


def test_shifted_features_drift_and_absurd_requests_are_flagged(
    served: tuple[Path, dict[str, Any]],
) -> None:
    project, sent = served
    with Project.open(project) as opened:
        iris = opened.monitor("all", model="iris")
        diabetes = opened.monitor("all", model="diabetes")
    features = {r["feature"]: r for r in iris["drift"]}
    assert features["petal_length"]["drifted"] and features["petal_length"]["test"] == "ks"
    assert not features["sepal_width"]["drifted"]
    assert features["petal_length"]["current_rows"] == 150 * 2 + 5
    assert iris["drift_summary"]["versions"] == [2]
    assert {r["feature"]: r["drifted"] for r in diabetes["drift"]}["bmi"]
    assert iris["anomalies"]["by_kind"]["out_of_range"] >= 5
    with Project.open(project) as opened:
        flagged = drift_store.flagged_requests(opened.conn, "iris", limit=1000)
    ids = {row[0] for row in flagged}
    assert set(sent["absurd"]) <= ids <= set(sent["all"])


def test_the_shippers_sketches_equal_a_reference_built_afterwards(
    served: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    project, _ = served
    again = tmp_path / "again.lepton"
    shutil.copy(project, again)
    conn = sqlite3.connect(again)
    with conn:
        for table in ("drift_references", "drift_minutes", "drift_hours", "request_anomalies"):
            conn.execute(f"DELETE FROM {table} WHERE model = 'iris'")
    conn.close()
    counts = []
    for path in (project, again):
        with Project.open(path) as opened:
            profile = reference.ensure(opened.ctx, "iris", 2)
            size = drift_sketch.Layout.of(profile).size
            rows_, total, _, _ = drift_store.sketch(opened.conn, "iris", [2], 0, 2**40,
                                                    "minutes", size)  # fmt: skip
            flagged = drift_store.flagged_requests(opened.conn, "iris", limit=1000)
            counts.append((rows_, total, sorted(flagged)))
    assert counts[0][0] == counts[1][0] == 65
    assert np.array_equal(counts[0][1], counts[1][1])
    assert counts[0][2] == counts[1][2]


def test_monitor_json_and_text_carry_drift_and_anomalies(
    served: tuple[Path, dict[str, Any]], cli_env: dict[str, str]
) -> None:
    project, _ = served
    run = [sys.executable, "-m", "lepton_desktop", "monitor", str(project), "--model", "iris",
           "--since", "all"]  # fmt: skip
    done = subprocess.run([*run, "--json"], capture_output=True, text=True, env=cli_env,
                          check=False, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    for row in report["drift"]:
        assert {"feature", "test", "statistic", "p_value", "drifted"} <= set(row)
    assert {"requests_flagged", "by_kind", "latency_spikes", "error_spikes"} <= set(
        report["anomalies"]
    )
    text = subprocess.run(run, capture_output=True, text=True, env=cli_env, check=False,
                          timeout=120)  # fmt: skip
    assert text.returncode == 0, text.stderr
    assert "petal_length" in text.stdout and "DRIFTED" in text.stdout
    assert "anomalies:" in text.stdout
