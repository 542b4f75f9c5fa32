"""Serving widgets on their own: the request log model, the request stats, the server
panel's settings, and the model lists on a real trained project."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from pytestqt.qtbot import QtBot

from lepton_desktop.core.entities import RequestRecord
from lepton_desktop.core.project import Project
from lepton_desktop.gui.serving.charts import RequestStats
from lepton_desktop.gui.serving.model_lists import LoadedModels, ModelPicker
from lepton_desktop.gui.serving.request_log import COLUMNS, STATUS_COLORS, RequestLogModel
from lepton_desktop.gui.serving.server_panel import OptionsError, ServerPanel, parse_origins

pytestmark = pytest.mark.gui


def _record(i: int, ts: float, status: int = 200, latency: float = 2.0) -> RequestRecord:
    return RequestRecord(
        id=i, deployment_id=1, ts=ts, request_id=f"r{i}", method="POST", path="/predict",
        protocol="predict", model="iris-mlp", version=2, status=status, latency_ms=latency,
        n_rows=1, inputs=[{"sepal_length": 5.1}], outputs=[{"label": "setosa"}], error=None,
    )  # fmt: skip



def test_log_model_appends_in_batches_caps_rows_and_colours_statuses(qtbot: QtBot) -> None:
    model = RequestLogModel(max_rows=5)
    inserted: list[tuple[int, int]] = []
    model.rowsInserted.connect(lambda _parent, first, last: inserted.append((first, last)))
    now = time.time()
    model.append([_record(i, now + i) for i in range(3)])
    model.append([_record(i, now + i, status=500 if i == 6 else 200) for i in range(3, 7)])
    assert inserted == [(0, 2), (1, 4)]  # two rows dropped first, then one insert
    assert model.rowCount() == 5
    assert [r.id for r in model.records] == [2, 3, 4, 5, 6]  # the oldest were dropped
    assert all(r.inputs is None for r in model.records)  # slim rows; details are read apart
    status = COLUMNS.index("Status")
    cell = model.index(4, status)
    assert model.data(cell) == "500"
    assert model.data(cell, Qt.ItemDataRole.ForegroundRole) == QColor(STATUS_COLORS[5])
    assert model.data(model.index(0, status), Qt.ItemDataRole.ForegroundRole) == QColor(
        STATUS_COLORS[2]
    )
    assert model.data(model.index(0, COLUMNS.index("Model"))) == "iris-mlp:2"


def test_stats_bin_rate_and_latency_percentiles() -> None:
    stats = RequestStats(window_s=60)
    now = 1_000_000.0
    # 10 requests in the last second (out of order), 1 to 100 ms; one older than the window.
    records = [
        _record(i, now - 0.05 - 0.09 * (i % 10), latency=float(1 + i * 11)) for i in range(10)
    ]
    stats.add([_record(99, now - 120)])
    stats.add(list(reversed(records)))
    assert list(stats.ts) == sorted(stats.ts)
    stats.prune(now)
    assert len(stats.ts) == 10
    x, rate = stats.rate(now)
    assert x[-1] == pytest.approx(0.0) and rate[-1] == 10 and rate.sum() == 10
    _, p50, p99 = stats.latency_percentiles(now)
    latencies = [r.latency_ms for r in records]
    assert p50[-1] == pytest.approx(sorted(latencies)[4] / 2 + sorted(latencies)[5] / 2)
    assert p99[-1] == pytest.approx(max(latencies), rel=0.02)
    assert all(v != v for v in p50[:-1])  # NaN where no request fell
    assert stats.recent(now, span_s=10)[0] == pytest.approx(1.0)


def test_cors_origins_are_checked_line_by_line() -> None:
    assert parse_origins("https://app.example.com\n\n  http://localhost:3000/ \n*") == [
        "https://app.example.com",
        "http://localhost:3000",
        "*",
    ]
    with pytest.raises(OptionsError, match=r"line 2 \('ftp://files'\)"):
        parse_origins("https://ok.example\nftp://files")
    with pytest.raises(OptionsError, match="line 1"):
        parse_origins("https://app.example.com/path")


def test_server_panel_turns_its_settings_into_options(qtbot: QtBot) -> None:
    panel = ServerPanel()
    qtbot.addWidget(panel)
    panel.port.setValue(9100)
    panel.cors.setPlainText("https://app.example.com")
    options = panel.options(["iris-mlp:2"])
    assert (options.models, options.port, options.host) == (["iris-mlp:2"], 9100, "127.0.0.1")
    assert options.cors == ["https://app.example.com"] and options.token is None
    panel.cors.setPlainText("https://app.example.com\nnot an origin")
    with pytest.raises(OptionsError, match="line 2"):
        panel.options([])
    with qtbot.waitSignal(panel.toggleRequested, timeout=1000):
        panel.toggle.click()


def test_model_lists_follow_a_trained_projects_registry(qtbot: QtBot, trained: Path) -> None:
    with Project.open(trained) as project:
        project.models.set_alias("iris-mlp:2", "champion")
        versions = project.models.list()
    picker = ModelPicker()
    qtbot.addWidget(picker)
    picker.set_versions(versions)
    assert picker.selected() == []  # everything
    picker.check_only(["iris-mlp:1"])
    picker.set_versions(versions)  # a refresh keeps what the user switched off
    assert picker.selected() == ["iris-mlp:1"]

    loaded = LoadedModels()
    qtbot.addWidget(loaded)
    loaded.set_registry(versions)
    loaded.set_loaded([{"name": v.name, "version": v.version, "aliases": v.aliases}
                       for v in versions])
    loaded.select("iris-mlp:2")
    assert not loaded.promote.isEnabled()  # already the champion
    assert loaded.rollback.isEnabled()
    loaded.select("iris-mlp:1")
    with qtbot.waitSignal(loaded.promoteRequested, timeout=1000) as blocker:
        loaded.promote.click()
    assert blocker.args == ["iris-mlp:1"]
