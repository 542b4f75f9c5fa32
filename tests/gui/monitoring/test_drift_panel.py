"""The Monitoring tab's drift table, feature histogram and anomaly marks (offscreen).

A trained iris model gets fifty minutes of logged requests through the writer's own
store function: steady traffic at about a millisecond, then the last half with
``petal_length`` shifted and one minute whose requests took fifty times longer. The
minutes start on the clock's minute (one minute's requests fall in one rollup bucket)
and end a minute ago, so the tab's "last hour" and the test's own read a few seconds
later hold the same rows.
"""

from __future__ import annotations

import csv
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from lepton_desktop.core.project import Project
from lepton_desktop.core.store import serving as serving_store
from lepton_desktop.gui.monitoring.drift_panel import DRIFTED, STABLE, DriftPanel
from lepton_desktop.gui.session import ProjectSession
from tests.conftest import SAMPLE_DATA
from tests.gui.monitoring.conftest import shown_tab

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("drift-gui") / "iris.lepton"
    with open(SAMPLE_DATA / "iris.csv", newline="") as handle:
        iris = [{k: v for k, v in r.items() if k != "species"} for r in csv.DictReader(handle)]
    with Project.create(path) as project:
        project.import_dataset(SAMPLE_DATA / "iris.csv", "iris", target="species")
        project.train("iris", arch="mlp", epochs=1, model_name="iris")
        start = (time.time() // 60 - 50) * 60
        rows = []
        for minute in range(50):
            for i in range(10):
                record = dict(iris[(minute * 10 + i) % 150])
                if minute >= 25:
                    record["petal_length"] = str(float(record["petal_length"]) + 2.5)
                rows.append({
                    "ts": start + minute * 60 + i, "request_id": uuid.uuid4().hex,
                    "method": "POST", "path": "/predict", "protocol": "native",
                    "model": "iris", "version": 1, "status": 200,
                    "latency_ms": 50.0 if minute == 35 else 1.0 + 0.01 * (i % 3),
                    "n_rows": 1, "inputs": [record], "outputs": [{"label": "setosa"}],
                })  # fmt: skip
        serving_store.add_requests(project.conn, rows)
    return path


def test_drift_table_colours_the_drifted_features_and_draws_the_chosen_one(
    qtbot: QtBot, trained: Path, open_session: Callable[[Path], ProjectSession]
) -> None:
    tab = shown_tab(qtbot, open_session(trained))
    tab.model_box.setCurrentIndex(1)  # "iris": one model, so its drift is read
    tab.model_box.activated.emit(1)
    qtbot.waitUntil(lambda: tab.view.choice.model == "iris" and bool(tab.drift.features),
                    timeout=20_000)  # fmt: skip
    table = tab.drift.table
    names = [table.item(r, 0).text() for r in range(table.rowCount())]
    assert names[:4] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert names[4] == "prediction (the model's answers)"
    verdicts = {names[r]: table.item(r, 7) for r in range(table.rowCount())}
    assert verdicts["petal_length"].text() == "drifted"
    assert verdicts["petal_length"].foreground().color() == DRIFTED
    assert verdicts["sepal_width"].text() == "stable"
    assert verdicts["sepal_width"].foreground().color() == STABLE
    assert table.item(2, 1).text() == "K-S"
    with Project.open(trained) as project:
        expected = {r["feature"]: r for r in project.monitor("1h", model="iris")["drift"]}
    assert float(table.item(2, 3).text()) == pytest.approx(expected["petal_length"]["p_value"],
                                                           rel=1e-3)  # fmt: skip
    table.selectRow(2)
    histogram = tab.drift.histogram
    assert histogram.labels and "petal_length" in histogram.plotItem.titleLabel.text
    assert len(histogram.served.opts["height"]) == len(histogram.labels)


def test_anomaly_card_and_spike_marks(
    qtbot: QtBot, trained: Path, open_session: Callable[[Path], ProjectSession]
) -> None:
    tab = shown_tab(qtbot, open_session(trained))
    report = tab.view.report
    assert len(report["anomalies"]["latency_spikes"]) == 1
    x, y = tab.charts.latency_spikes.getData()
    assert len(x) == 1 and y[0] == pytest.approx(report["anomalies"]["latency_spikes"][0]["value"])
    flagged = report["anomalies"]["requests_flagged"]
    assert flagged > 0 and tab.cards["anomalies"].value.text() == f"{flagged:,} requests"
    assert "out of range" in tab.cards["anomalies"].detail.text()


def test_drift_panel_without_a_model_or_a_reference(qtbot: QtBot) -> None:
    panel = DriftPanel()
    qtbot.addWidget(panel)
    panel.show_drift(None)
    assert panel.table.rowCount() == 0 and "Choose one model" in panel.verdict.text()
    panel.show_drift({"features": [], "note": "no training data for iris:1"})
    assert "no training data for iris:1" in panel.verdict.text()
    assert panel.histogram.labels == []
