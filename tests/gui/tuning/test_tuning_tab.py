"""The Tuning tab: charts, the trials table, the New Study dialog, and a real tune worker."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from pytestqt.qtbot import QtBot

from lepton_desktop.core.project import Project
from lepton_desktop.core.tuning.reading import COMPLETE, PRUNED, RUNNING
from lepton_desktop.core.tuning.space import default_space
from lepton_desktop.core.tuning.study_view import pareto_mask
from lepton_desktop.gui.main_window import MainWindow
from lepton_desktop.gui.tuning.charts import separated, stairs
from lepton_desktop.gui.tuning.poller import StudyPoller
from lepton_desktop.gui.tuning.tab import TuningTab
from tests.gui.conftest import WORKER_TIMEOUT_MS
from tests.helpers import snapshot
from tests.study_factory import add_with_sql, generate, make_study_file

pytestmark = pytest.mark.gui
OpenProject = Callable[[Path], None]


@pytest.fixture(autouse=True)
def _fast_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(StudyPoller, "INTERVAL_MS", 100)


def _open_tuning(
    qtbot: QtBot, window: MainWindow, path: Path, open_project: OpenProject, trials: int
) -> TuningTab:
    open_project(path)
    tab = window.tuning_tab
    window.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: tab.view is not None and tab.view.n == trials, timeout=20_000)
    return tab


def test_charts_draw_the_study_and_follow_new_trials(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, open_project: OpenProject
) -> None:
    path = make_study_file(tmp_path / "s.lepton", 300, running=2)
    tab = _open_tuning(qtbot, window, path, open_project, 300)
    view, charts = tab.view, tab.charts
    assert [e.name for e in tab.studies.entries] == ["study"]
    assert tab.studies.entries[0].status == "external"  # made outside the app
    done = view.states == COMPLETE
    assert charts.history.dots.x.tolist() == view.numbers[done].astype(float).tolist()
    assert np.allclose(charts.history.dots.y, view.values[done, 0])
    best_x, best_y = charts.history.best.getData()
    assert best_y[-1] == pytest.approx(np.nanmin(view.values[done, 0]))
    assert np.array_equal(best_x, stairs(view.numbers.astype(float), view.best_so_far())[0])
    lines = charts.intermediate.lines[COMPLETE].item.getData()
    expected = separated(
        view.iv_rows[done[view.iv_rows]],
        view.iv_steps[done[view.iv_rows]],
        view.iv_values[done[view.iv_rows]],
        1,
    )
    assert np.array_equal(lines[0], expected[0], equal_nan=True)
    assert np.array_equal(lines[1], expected[1], equal_nan=True)
    pruned_with_reports = len(set(view.iv_rows[view.states[view.iv_rows] == PRUNED].tolist()))
    assert len(charts.intermediate.pruned_at.x) == pruned_with_reports
    assert charts.parallel.matrix.shape == (int(done.sum()), 1 + len(view.params))
    qtbot.waitUntil(lambda: charts.importance.computations >= 1, timeout=20_000)
    assert next(iter(charts.importance.importances)) == "lr"
    assert "Best value" in tab.summary.best.text()

    charts.setCurrentWidget(charts.slices)
    slices = charts.slices.charts
    assert set(slices) == set(view.params)
    has_lr = done & np.isfinite(view.params["lr"].values)
    assert np.allclose(slices["lr"].dots.x, np.log10(view.params["lr"].values[has_lr]))
    charts.setCurrentWidget(charts.contour)
    assert charts.contour.plot.grid.shape == (24, 24)
    assert not charts.isTabEnabled(charts.pareto_index)  # one objective

    # 25 new trials arrive (the 2 running ones stay running): only those rows are read.
    fetched, redraws = tab.poller.rows_fetched, charts.contour.plot.redraws
    drawn = len(charts.intermediate.lines[COMPLETE].buffer.x)
    add_with_sql(path, "study", generate(25, seed=7))
    qtbot.waitUntil(lambda: view.n == 325, timeout=10_000)
    new_rows = tab.poller.rows_fetched - fetched
    assert 25 * 2 < new_rows < 25 * 25  # the new trials (and the 2 running), not 325
    assert charts.contour.plot.redraws > redraws  # shown: redrawn at once
    assert len(charts.intermediate.lines[COMPLETE].buffer.x) == drawn  # hidden: not yet
    charts.setCurrentIndex(0)  # shown again: catches up, appending the new curves only
    new_done = view.states[300:] == COMPLETE
    new_points = np.isin(view.iv_rows, np.flatnonzero(new_done) + 300).sum()
    grown = len(charts.intermediate.lines[COMPLETE].buffer.x) - drawn
    assert grown == new_points + new_done.sum()  # appended: points plus a gap each
    assert tab.trials.model.rowCount() == 325

    _hidden_reads_nothing_then_catches_up(qtbot, window, tab, path)


def _hidden_reads_nothing_then_catches_up(
    qtbot: QtBot, window: MainWindow, tab: TuningTab, path: Path
) -> None:
    window.tabs.setCurrentWidget(window.datasets_tab)
    # A read in flight when the tab was hidden (and the one it may have asked to follow
    # it) still lands: count from when the poller is idle.
    qtbot.waitUntil(lambda: not tab.poller._pending and not tab.poller._again, timeout=10_000)
    qtbot.wait(50)
    polls, seen = tab.poller.polls, tab.view.n
    add_with_sql(path, "study", generate(5, seed=8))
    qtbot.wait(500)  # five poll intervals
    assert tab.poller.polls == polls and tab.view.n == seen
    window.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: tab.view.n == seen + 5, timeout=10_000)


def test_a_two_objective_study_shows_its_pareto_front(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, open_project: OpenProject
) -> None:
    path = make_study_file(tmp_path / "m.lepton", 120, objectives=2)
    tab = _open_tuning(qtbot, window, path, open_project, 120)
    view, charts = tab.view, tab.charts
    assert charts.isTabEnabled(charts.pareto_index)
    charts.setCurrentIndex(charts.pareto_index)
    done = np.flatnonzero(view.states == COMPLETE)
    front = pareto_mask(view.values[done], view.directions)
    assert charts.pareto.front_rows.tolist() == done[front].tolist()
    assert len(charts.pareto.front.x) + len(charts.pareto.others.x) == len(done)
    assert charts.history.best.getData()[0] is None or len(charts.history.best.getData()[0]) == 0
    assert "Pareto front" in tab.summary.best.text()
    assert [t for t, _ in tab.trials.model.columns][2:4] == ["value 0", "value 1"]


def test_table_sorts_filters_and_selecting_shows_the_curve(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, open_project: OpenProject
) -> None:
    path = make_study_file(tmp_path / "t.lepton", 200, running=1)
    tab = _open_tuning(qtbot, window, path, open_project, 200)
    view, table = tab.view, tab.trials
    model = table.model
    value_column = [t for t, _ in model.columns].index("value")
    table.table.sortByColumn(value_column, Qt.SortOrder.AscendingOrder)
    shown = [float(model.data(model.index(r, value_column))) for r in range(5)]
    assert shown == sorted(shown)
    assert shown[0] == pytest.approx(np.nanmin(view.values[:, 0]), rel=1e-4)

    table.search.setText("activation=relu layers>=3")
    qtbot.waitUntil(lambda: model.query == "activation=relu layers>=3", timeout=5000)
    rows = model.order
    assert len(rows) and all(view.params["activation"].text(r) == "relu" for r in rows)
    assert (view.params["layers"].values[rows] >= 3).all()
    assert table.count.text() == f"{len(rows):,} of 200 trials"
    table.search.clear()
    table.state_filter.setCurrentIndex(table.state_filter.findText("Running"))
    assert model.rowCount() == 1 and view.states[model.order[0]] == RUNNING
    table.state_filter.setCurrentIndex(0)

    table.table.selectRow(3)
    row = int(model.order[3])
    assert tab.curve.row == row
    _steps, values = tab.curve.curve.getData()
    assert np.array_equal(values, view.curve(row)[1])
    assert tab.charts.history.selected == row
    assert f"Trial {int(view.numbers[row])}" in tab.curve.header.text()

    # Clicking a dot in the history chart selects its trial in the table.
    history = tab.charts.history
    target = int(np.flatnonzero(view.states == COMPLETE)[10])
    history.getPlotItem().getViewBox().setRange(
        xRange=(view.numbers[target] - 3, view.numbers[target] + 3),
        yRange=(view.values[target, 0] - 0.01, view.values[target, 0] + 0.01),
        padding=0,
    )
    qtbot.wait(50)
    view_box = history.getPlotItem().getViewBox()
    spot = history.mapFromScene(
        view_box.mapViewToScene(QPointF(float(view.numbers[target]), view.values[target, 0]))
    )
    qtbot.mouseClick(history.viewport(), Qt.MouseButton.LeftButton, pos=spot)
    qtbot.waitUntil(lambda: table.selected_row() == target, timeout=5000)
    assert tab.curve.row == target


def test_a_ten_thousand_trial_study_loads_and_redraws(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, open_project: OpenProject
) -> None:
    path = make_study_file(tmp_path / "big.lepton", 10_000, running=3)
    tab = _open_tuning(qtbot, window, path, open_project, 10_000)
    charts = tab.charts
    started = time.perf_counter()
    charts.redraw_all()
    for chart in charts.all_charts():
        chart.grab()
    seconds = time.perf_counter() - started
    assert seconds < 2.0  # ~0.07 s alone (bench/study_plots.py); generous when busy
    assert charts.intermediate.every == 4  # 2,500 of the ~9,997 finished curves drawn
    assert len(charts.history.dots.x) == tab.view.count(COMPLETE)
    assert "2,000 of" in charts.parallel.getPlotItem().titleLabel.text
    table = tab.trials.model
    table.sort(0, Qt.SortOrder.DescendingOrder)
    assert int(table.data(table.index(0, 0))) == 9999


def test_new_study_dialog_refuses_a_bad_space_then_creates(
    qtbot: QtBot, window: MainWindow, iris_project: Path, open_project: OpenProject
) -> None:
    open_project(iris_project)
    tab = window.tuning_tab
    window.tabs.setCurrentWidget(tab)
    qtbot.keyClick(
        tab, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    qtbot.waitUntil(lambda: tab.dialog is not None and tab.dialog.isVisible(), timeout=10_000)
    dialog = tab.dialog
    assert dialog.space.space() == {
        name: {k: v for k, v in spec.items() if k != "step"}
        | ({"log": spec["log"]} if "log" in spec else {})
        for name, spec in default_space("mlp").items()
    }
    row = dialog.space.names().index("lr")
    dialog.space.item(row, 2).setText("0.5")  # low above high
    before = snapshot(iris_project)
    dialog.create_button.click()
    qtbot.waitUntil(lambda: dialog.error.isVisibleTo(dialog), timeout=10_000)
    assert "lr" in dialog.error.text()
    assert dialog.isVisible()
    assert snapshot(iris_project) == before
    dialog.space.item(row, 2).setText("1e-3")
    dialog.trials.setValue(3)
    dialog.create_button.click()
    qtbot.waitUntil(lambda: tab.dialog is None, timeout=10_000)  # closed once created
    qtbot.waitUntil(lambda: [e.name for e in tab.studies.entries] == ["iris-mlp"], timeout=10_000)
    entry = tab.studies.entries[0]
    assert entry.status == "created" and entry.planned == 3
    assert entry.record.space["lr"]["low"] == 1e-3
    assert tab.start_action.isEnabled() and not tab.stop_action.isEnabled()


@pytest.mark.slow
def test_create_start_stop_resume_and_promote_with_a_real_worker(
    qtbot: QtBot, window: MainWindow, iris_project: Path, open_project: OpenProject
) -> None:
    open_project(iris_project)
    tab = window.tuning_tab
    window.tabs.setCurrentWidget(tab)
    tab.new_action.trigger()
    qtbot.waitUntil(lambda: tab.dialog is not None and tab.dialog.isVisible(), timeout=10_000)
    dialog = tab.dialog
    dialog.trials.setValue(6)
    dialog.epochs.setValue(25)  # slow enough that Stop lands before trial 6 ends
    dialog.start_button.click()
    qtbot.waitUntil(
        lambda: tab.entry is not None and tab.entry.status == "running", timeout=10_000
    )
    qtbot.waitUntil(
        lambda: tab.view is not None and tab.view.count(COMPLETE) >= 1, timeout=WORKER_TIMEOUT_MS
    )
    assert tab.stop_action.isEnabled()
    assert len(tab.charts.history.dots.x) >= 1  # drawn while the study runs
    tab.stop_action.trigger()
    qtbot.waitUntil(
        lambda: tab.entry.status == "stopped" and not tab.entry.active, timeout=WORKER_TIMEOUT_MS
    )
    assert tab.view.count(COMPLETE, PRUNED) < 6
    assert tab.start_action.text() == "&Resume" and tab.start_action.isEnabled()
    tab.start_action.trigger()
    qtbot.waitUntil(lambda: tab.entry.status == "running", timeout=10_000)
    qtbot.waitUntil(lambda: tab.entry.status == "finished", timeout=WORKER_TIMEOUT_MS)
    assert tab.view.count(COMPLETE, PRUNED) == 6
    assert "6 / 6 trials" in tab.summary.progress.format()
    # The best trial shows the loss curves of the run that retrained it for its model.
    qtbot.waitUntil(lambda: tab.entry.best_run_id is not None, timeout=10_000)
    best = tab.view.row_of_number(tab.entry.record.best_trial)
    tab.trials.table.selectRow(tab.trials.model.row_of(best))
    qtbot.waitUntil(lambda: tab.curve.run_id == tab.entry.best_run_id, timeout=10_000)
    assert set(tab.curve.run_chart.series_names) == {"train_loss", "val_loss"}
    assert tab.curve.run_chart.isVisibleTo(tab)
    qtbot.waitUntil(tab.promote_action.isEnabled, timeout=10_000)
    tab.promote_action.trigger()
    qtbot.waitUntil(lambda: "champion" in tab.banner.label.text(), timeout=10_000)
    with Project.open(iris_project) as project:
        study = project.tuning.get("iris-mlp")
        model = project.models.get(study.best_model)
    assert "champion" in model.aliases


def test_a_selected_trial_stays_selected_when_the_table_is_re_sorted(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, open_project: OpenProject
) -> None:
    path = make_study_file(tmp_path / "r.lepton", 60)
    tab = _open_tuning(qtbot, window, path, open_project, 60)
    table, model = tab.trials.table, tab.trials.model
    value_column = [t for t, _ in model.columns].index("value")
    table.selectRow(5)
    chosen = int(model.order[5])
    table.sortByColumn(value_column, Qt.SortOrder.DescendingOrder)  # the header, as a user does
    (selected,) = {i.row() for i in table.selectionModel().selectedIndexes()}
    assert int(model.order[selected]) == chosen
