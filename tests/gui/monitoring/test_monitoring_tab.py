"""The Monitoring tab on a project with logged traffic and feedback (offscreen)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from lepton_desktop.core.project import Project
from lepton_desktop.gui.main_window import MainWindow
from lepton_desktop.gui.monitoring.tab import ALL_MODELS, MonitoringTab
from lepton_desktop.gui.session import ProjectSession
from tests.gui.monitoring.conftest import shown_tab
from tests.helpers import write_csv
from tests.monitoring_factory import CLASSES, log_traffic

pytestmark = pytest.mark.gui


@pytest.fixture
def logged(tmp_path: Path) -> Path:
    path = tmp_path / "logged.lepton"
    Project.create(path).close()
    now = time.time()
    log_traffic(path, 3000, start=now - 3000, seconds=2990, seed=1)
    log_traffic(path, 500, model="iris", version=2, start=now - 600, seconds=590, seed=2)
    return path


def test_tab_shows_the_report_of_the_window(
    qtbot: QtBot, logged: Path, open_session: Callable[[Path], ProjectSession]
) -> None:
    tab = shown_tab(qtbot, open_session(logged))
    with Project.open(logged) as project:
        report = project.monitor("1h")
    assert tab.cards["requests"].value.text() == f"{report['requests']:,}"
    assert tab.cards["errors"].detail.text() == (
        f"4xx {report['errors']['4xx']:,} · 5xx 0"
    )
    items = [tab.model_box.itemText(i) for i in range(tab.model_box.count())]
    assert items == [ALL_MODELS, "iris", "iris:1", "iris:2"]
    assert set(tab.charts.predictions.series_names) == set(CLASSES)
    assert tab.charts.versions.series_names == ["iris:1", "iris:2"]
    assert tab.charts.latency.series_names == ["p50", "p95", "p99"]
    assert tab.per_class.rowCount() == len(CLASSES)  # one model's quality, by class
    assert tab.confusion.rowCount() == tab.confusion.columnCount() == len(CLASSES)
    assert tab.cards["quality"].value.text().startswith("acc ")


def test_choosing_a_version_a_window_and_a_range(
    qtbot: QtBot, logged: Path, open_session: Callable[[Path], ProjectSession]
) -> None:
    session = open_session(logged)
    tab = shown_tab(qtbot, session)
    tab.model_box.setCurrentIndex(3)
    tab.model_box.activated.emit(3)
    qtbot.waitUntil(lambda: tab.view.choice.version == 2, timeout=10_000)
    assert tab.cards["requests"].value.text() == "500"
    assert tab.charts.versions.series_names == ["iris:2"]
    tab.window_box.setCurrentIndex(0)  # the last 15 minutes
    tab.window_box.activated.emit(0)
    qtbot.waitUntil(lambda: tab.view.choice.since == "15m", timeout=10_000)
    now = time.time()
    tab.choose_range(now - 300, now)
    qtbot.waitUntil(lambda: tab.view.choice.range is not None, timeout=10_000)
    with Project.open(logged) as project:
        expected = project.monitor("5m", model="iris", version=2)["requests"]
    shown = int(tab.cards["requests"].value.text().replace(",", ""))
    assert abs(shown - expected) <= 10  # a minute's traffic either way at the edges
    assert tab.whole_button.isEnabled()
    tab.whole_button.click()
    qtbot.waitUntil(lambda: tab.view.choice.range is None, timeout=10_000)
    assert not tab.whole_button.isEnabled()


def test_the_charts_appear_with_their_data_and_keep_their_place_until_then(
    qtbot: QtBot, logged: Path, open_session: Callable[[Path], ProjectSession]
) -> None:
    tab = MonitoringTab()
    qtbot.addWidget(tab)
    tab.set_session(open_session(logged))
    tab.show()
    charts = [*tab.charts.charts, tab.quality_chart]
    # Before the first read: not painted empty, and their room kept in the layout.
    assert not any(chart.isVisible() for chart in charts)
    assert all(chart.sizePolicy().retainSizeWhenHidden() for chart in charts)
    qtbot.waitUntil(lambda: tab.view is not None, timeout=20_000)
    assert all(chart.isVisible() for chart in charts)
    assert tab.charts.requests.series_names  # shown with their data
    # Each is shown in its own step, in its own place: the first one shown does not
    # take the room of the others still hidden (and move when they appear).
    places = [chart.geometry() for chart in tab.charts.charts]
    for chart in tab.charts.charts:
        chart.hide()
    tab.charts.requests.show()
    qtbot.wait(50)
    assert tab.charts.requests.geometry() == places[0]


def test_a_range_dragged_on_one_chart_moves_the_others_and_is_read(
    qtbot: QtBot, logged: Path, open_session: Callable[[Path], ProjectSession]
) -> None:
    tab = shown_tab(qtbot, open_session(logged))
    now = time.time()
    box = tab.charts.latency.getPlotItem().getViewBox()
    box.setXRange(now - 300, now, padding=0)
    box.sigRangeChangedManually.emit([True, False])  # what a drag or a wheel turn sends
    for chart in tab.charts.charts:
        low, high = chart.getPlotItem().getViewBox().viewRange()[0]
        assert (low, high) == pytest.approx((now - 300, now), abs=1e-3)
    qtbot.waitUntil(lambda: tab.view.choice.range is not None, timeout=10_000)
    assert tab.view.choice.range == pytest.approx((now - 300, now), abs=1e-3)


def test_an_empty_project_says_how_to_get_data(
    qtbot: QtBot, tmp_path: Path, open_session: Callable[[Path], ProjectSession]
) -> None:
    path = tmp_path / "empty.lepton"
    Project.create(path).close()
    tab = shown_tab(qtbot, open_session(path))
    assert tab.empty.isVisibleTo(tab)
    assert tab.cards["requests"].value.text() == "0"
    assert tab.cards["latency"].value.text() == "–"


def test_main_window_has_the_monitoring_tab(window: MainWindow) -> None:
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert titles[-1] == "Monitoring"
    assert window.tabs.widget(titles.index("Monitoring")) is window.monitoring_tab


def test_alerts_panel_shows_rules_history_and_notifies_new_alerts(
    qtbot: QtBot, logged: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    open_session: Callable[[Path], ProjectSession],
) -> None:  # fmt: skip
    from lepton_desktop.core.monitoring.alerts import RuleSpec

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    with Project.open(logged) as project:
        project.add_alert(RuleSpec("errors", "error_rate", ">", 0.001))
        project.check_alerts()
    tab = shown_tab(qtbot, open_session(logged))
    assert tab.alerts.rules.rowCount() == 1
    assert tab.alerts.rules.item(0, 1).text() == "error_rate of every model"
    assert tab.alerts.history.item(0, 1).text() == "firing"
    assert tab.side_tabs.tabText(2) == "Alerts (1 firing)"
    assert tab.notifier.last is None  # seen when the tab opened: not news
    # A rule added from the panel is stored; its alert, raised by a check (as a running
    # server does), is announced.
    tab.alerts.addRequested.emit(RuleSpec("p99", "latency_p99_ms", ">", 0.001))
    qtbot.waitUntil(lambda: tab.alerts.rules.rowCount() == 2, timeout=10_000)
    with Project.open(logged) as project:
        (change,) = project.check_alerts()
    tab.poller.poll()
    qtbot.waitUntil(lambda: tab.notifier.last is not None, timeout=10_000)
    assert tab.notifier.last[1] == change.message
    tab.alerts.rules.selectRow(1)
    tab.alerts.remove_button.click()
    qtbot.waitUntil(lambda: tab.alerts.rules.rowCount() == 1, timeout=10_000)


def test_rule_dialog_fills_a_spec(qtbot: QtBot) -> None:
    from lepton_desktop.gui.monitoring.alerts_panel import RuleDialog

    dialog = RuleDialog(["iris"])
    qtbot.addWidget(dialog)
    dialog.name.setText(" slow ")
    dialog.metric.setCurrentText("latency_p99_ms")
    dialog.model.setCurrentIndex(1)
    dialog.side.setCurrentText("above")
    dialog.threshold.setValue(250)
    dialog.cooldown.setValue(10)
    dialog.webhook.setText("https://hooks.example/x")
    spec = dialog.spec()
    assert (spec.name, spec.metric, spec.model, spec.op, spec.threshold) == (
        "slow", "latency_p99_ms", "iris", ">", 250.0)
    assert spec.cooldown_s == 600.0 and spec.webhook == "https://hooks.example/x"


def test_server_restarts_are_marked(
    qtbot: QtBot, logged: Path, open_session: Callable[[Path], ProjectSession]
) -> None:
    from lepton_desktop.core.store import serving as serving_store
    from lepton_desktop.core.store.db import connect

    conn = connect(logged)
    now = time.time()
    serving_store.add_server_events(conn, 1, [(now - 120, "exited", "server process 0 exited"),
                                              (now - 119, "restarted", "restarted")])  # fmt: skip
    conn.close()
    tab = shown_tab(qtbot, open_session(logged))
    assert tab.cards["rate"].detail.text() == "1 server restart(s)"
    assert all(len(lines) == 1 for lines in tab.charts._marks)


def test_labels_imported_from_a_file_show_their_counts(
    qtbot: QtBot, tmp_path: Path, open_session: Callable[[Path], ProjectSession]
) -> None:
    path = tmp_path / "unlabelled.lepton"
    Project.create(path).close()
    log_traffic(path, 200, start=time.time() - 600, seconds=500, feedback_share=0.0, seed=3)
    conn = sqlite3.connect(path)
    ids = [r[0] for r in conn.execute("SELECT request_id FROM request_log WHERE status = 200")]
    conn.close()
    tab = shown_tab(qtbot, open_session(path))
    assert tab.view.report["quality"]["labelled"] == 0
    bad = write_csv(tmp_path / "bad.csv", ["request_id", "label"], [[ids[0], "rose"]])
    tab.import_labels(bad)
    qtbot.waitUntil(lambda: tab.import_result.text().startswith("Nothing imported"))
    assert "line 2: 'rose' is not a class of iris:1" in tab.import_result.text()
    good = write_csv(tmp_path / "labels.csv", ["request_id", "label"],
                     [[rid, "setosa"] for rid in ids])  # fmt: skip
    tab.import_labels(good)
    qtbot.waitUntil(lambda: tab.import_result.text().startswith("Stored"), timeout=10_000)
    assert tab.import_result.text() == (
        f"Stored {len(ids):,} labels of {len(ids):,} requests (iris:1: {len(ids):,})"
    )
    qtbot.waitUntil(lambda: tab.view.report["quality"]["labelled"] == len(ids), timeout=10_000)
    assert tab.cards["quality"].detail.text() == f"{len(ids):,} labelled rows"


def test_quality_chart_count_window_and_offline_reference(
    qtbot: QtBot, logged: Path, open_session: Callable[[Path], ProjectSession]
) -> None:
    tab = shown_tab(qtbot, open_session(logged))
    tab.model_box.setCurrentIndex(1)  # iris, every version
    tab.model_box.activated.emit(1)
    qtbot.waitUntil(lambda: tab.view.choice.model == "iris", timeout=10_000)
    series = tab.view.report["quality_series"]
    assert tab.quality_chart.series_names == ["Accuracy (labels)"]
    assert any(v is not None for v in series["values"])
    assert tab.quality_chart.reference_value is None  # iris was never registered here
    assert tab.quality_note.text().startswith(
        f"{tab.view.report['quality']['labelled']:,} labelled rows (this window)")
    tab.count_box.setCurrentIndex(1)
    tab.count_box.activated.emit(1)
    qtbot.waitUntil(lambda: tab.view.choice.last_labelled == 100, timeout=10_000)
    assert tab.quality_note.text().startswith("100 labelled rows (the newest labelled rows)")
    assert sum(int(tab.per_class.item(r, 4).text()) for r in range(tab.per_class.rowCount())) \
        == 100
