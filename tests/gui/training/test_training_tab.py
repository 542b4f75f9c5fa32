"""The Training tab, driven through the real window and real ``train`` worker processes."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from lepton_desktop.core.project import Project
from lepton_desktop.gui.main_window import MainWindow
from lepton_desktop.gui.training.poller import RunPoller
from lepton_desktop.gui.training.run_table import COLUMNS
from lepton_desktop.gui.training.tab import TrainingTab
from tests.gui.conftest import REPO, WORKER_TIMEOUT_MS

pytestmark = [pytest.mark.gui, pytest.mark.slow]
OpenProject = Callable[[Path], None]
NILE = REPO / "resources" / "sample_data" / "nile.csv"


@pytest.fixture(autouse=True)
def _fast_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    # Poll runs every 100 ms instead of 500 ms, so tests see progress sooner.
    monkeypatch.setattr(RunPoller, "INTERVAL_MS", 100)


def _open_training(
    qtbot: QtBot, window: MainWindow, path: Path, open_project: OpenProject
) -> TrainingTab:
    open_project(path)
    tab = window.training_tab
    window.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: len(tab.form.versions) > 0, timeout=10_000)
    return tab


def _train(qtbot: QtBot, tab: TrainingTab, epochs: int) -> int:
    """Fill the form for iris, press Train, and return the new run's id."""
    tab.form.select_dataset("iris:1")
    tab.form.epochs.setValue(epochs)
    known = {r.id for r in tab.table.runs.runs}
    qtbot.waitUntil(tab.train_button.isEnabled, timeout=10_000)
    qtbot.mouseClick(tab.train_button, Qt.MouseButton.LeftButton)
    # The first queue imports torch on the database thread (the memory check builds the
    # model's layers): seconds on a loaded machine.
    qtbot.waitUntil(lambda: bool(set(tab.table.selected_ids()) - known), timeout=60_000)
    (run_id,) = set(tab.table.selected_ids()) - known
    return run_id


def _status(tab: TrainingTab, run_id: int) -> str:
    run = tab.table.runs.run(run_id)
    return run.status if run else ""


def _cell(tab: TrainingTab, run_id: int, column: str) -> str:
    model = tab.table.runs
    return model.data(model.index(model.row_of(run_id), COLUMNS.index(column)))


def _db_counts(path: Path) -> tuple[int, int]:
    with Project.open(path) as project:
        return len(project.runs.list(include_archived=True)), len(project.jobs())


def test_train_watch_live_charts_and_read_the_evaluation(
    qtbot: QtBot, window: MainWindow, iris_project: Path, open_project: OpenProject
) -> None:
    tab = _open_training(qtbot, window, iris_project, open_project)
    arch_items = tab.form.arch.model()
    assert isinstance(arch_items, QStandardItemModel)
    assert tab.form.arch.currentData() == "mlp"  # the architecture that fits a table
    assert not arch_items.item(1).isEnabled()  # no CNN on a table
    assert "images" in arch_items.item(1).toolTip()
    # Long enough (no early stop) to span several flushes of the worker's metric writer,
    # however fast the machine: the curve must be seen growing while the run is live.
    tab.form.patience.setValue(0)
    run_id = _train(qtbot, tab, epochs=300)
    step = tab.charts.charts["step"]
    seen: list[int] = []
    tab.poller.updated.connect(lambda _updates: seen.append(step.points(run_id, "loss")))
    qtbot.waitUntil(lambda: _status(tab, run_id) == "finished", timeout=WORKER_TIMEOUT_MS)
    growing = sorted({n for n in seen if n > 0})
    assert len(growing) >= 2, f"the loss curve never grew while training: {seen}"
    x, y = step.curve_data(run_id, "loss")
    assert len(x) == len(y) == step.points(run_id, "loss") == growing[-1]
    assert tab.charts.charts["epoch_loss"].points(run_id, "val_loss") == 300
    assert tab.charts.charts["cpu"].points(run_id, "cpu_percent") > 0
    assert tab.charts.title("cpu") == "CPU % (no GPU)"
    assert _cell(tab, run_id, "Status") == "finished"
    qtbot.waitUntil(lambda: _cell(tab, run_id, "Model") == "iris-mlp:1", timeout=10_000)
    assert _cell(tab, run_id, "Best").startswith("accuracy ")

    view = tab.evaluation
    tab.views.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.has_evaluation, timeout=10_000)
    evaluation = view.run.evaluation
    assert view.confusion.matrix.shape == (3, 3)
    assert view.confusion.matrix.sum() == evaluation["n_test"]
    counts = [int(label.toPlainText()) for label in view.confusion.labels]
    assert counts == [n for row in evaluation["test"]["confusion_matrix"] for n in row]
    assert view.metrics.value(0, 0) == "Accuracy"
    assert "majority class" in view.metrics.horizontalHeaderItem(2).text()
    assert view.per_class.n_classes == 3
    assert set(view.importance.columns) == {"sepal_length", "sepal_width", "petal_length",
                                            "petal_width"}
    qtbot.waitUntil(lambda: tab.notifier.last is not None, timeout=10_000)
    title, text, where = tab.notifier.last
    assert title == f"Run {run_id} finished"
    assert "test accuracy" in text and "baseline" in text
    assert where == "status bar"  # offscreen there is no system tray

    assert tab.actions_.champion.isEnabled()
    tab.actions_.champion.trigger()
    qtbot.waitUntil(lambda: "champion" in _cell(tab, run_id, "Model"), timeout=10_000)
    assert not tab.actions_.champion.isEnabled()


def test_bad_values_are_refused_before_anything_is_queued(
    qtbot: QtBot, window: MainWindow, iris_project: Path, open_project: OpenProject
) -> None:
    with Project.open(iris_project) as project:
        project.import_dataset(NILE, "nile", kind="timeseries", target="volume",
                               time_column="year")
    before = _db_counts(iris_project)
    tab = _open_training(qtbot, window, iris_project, open_project)
    tab.form.select_dataset("iris:1")
    tab.form.lr.setText("0")
    assert not tab.form.lr.hasAcceptableInput()
    tab.form.lr.setFocus()
    qtbot.keyClick(tab.form.lr, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert tab.form.error.isVisibleTo(tab)
    assert tab.form.error.text().startswith("Learning rate")
    tab.form.lr.setText("1e-3")
    assert tab.form.lr.hasAcceptableInput()

    tab.form.select_dataset("nile:1")
    assert tab.form.arch.currentData() == "rnn"
    assert tab.form.window.isVisibleTo(tab) and not tab.form.hidden.isVisibleTo(tab)
    tab.form.window.setValue(5000)  # longer than the series: the core refuses it
    tab.train()
    qtbot.waitUntil(lambda: "--window 5000" in tab.form.error.text(), timeout=10_000)
    assert tab.actions_.train.isEnabled()
    assert _db_counts(iris_project) == before
    assert tab.table.runs.rowCount() == 0


def test_stop_a_long_run_and_overlay_two_runs(
    qtbot: QtBot, window: MainWindow, iris_project: Path, open_project: OpenProject
) -> None:
    tab = _open_training(qtbot, window, iris_project, open_project)
    short = _train(qtbot, tab, epochs=3)
    tab.form.patience.setValue(0)  # no early stop: only Stop ends the long run
    long = _train(qtbot, tab, epochs=5000)
    qtbot.waitUntil(lambda: _status(tab, long) == "running"
                    and tab.charts.charts["step"].points(long, "loss") > 0,
                    timeout=WORKER_TIMEOUT_MS)
    assert tab.current_run().id == long
    assert tab.actions_.stop.isEnabled() and tab.actions_.pause.isEnabled()
    assert not tab.actions_.resume.isEnabled() and not tab.actions_.delete.isEnabled()
    tab.actions_.stop.trigger()
    qtbot.waitUntil(lambda: _status(tab, long) == "stopped", timeout=WORKER_TIMEOUT_MS)
    assert tab.table.runs.run(long).epochs_done < 5000
    assert tab.actions_.resume.isEnabled()  # a stopped run continues from its checkpoint
    qtbot.waitUntil(lambda: _status(tab, short) == "finished", timeout=WORKER_TIMEOUT_MS)

    tab.table.select_ids([short, long])
    step = tab.charts.charts["step"]
    qtbot.waitUntil(lambda: step.points(short, "loss") > 0, timeout=10_000)
    shown = {key for key in step.visible_curves() if key[1] == "loss"}
    assert shown == {(short, "loss"), (long, "loss")}
    pens = {step._series[key].curve.opts["pen"].color().name() for key in shown}
    assert len(pens) == 2  # one colour per run
    assert len(step._legend.items) == 2
    tab.table.select_ids([short])
    assert {key[0] for key in step.visible_curves()} == {short}

    tab.actions_.archive.trigger()  # archived runs leave the table (their data stays)
    qtbot.waitUntil(lambda: tab.table.runs.row_of(short) is None, timeout=10_000)
    tab.show_archived.setChecked(True)
    qtbot.waitUntil(lambda: tab.table.runs.row_of(short) is not None, timeout=10_000)
    assert _cell(tab, short, "Status") == "finished (archived)"
    tab.table.select_ids([long])
    tab.actions_.delete.trigger()
    box = window.findChild(QMessageBox, "questionBox")
    qtbot.waitUntil(box.isVisible)
    next(b for b in box.buttons() if b.text() == "Delete").click()
    qtbot.waitUntil(lambda: tab.table.runs.row_of(long) is None, timeout=10_000)
    assert step.points(long, "loss") == 0  # its cached points are dropped too
    with Project.open(iris_project) as project:
        assert [r.id for r in project.runs.list(include_archived=True)] == [short]
        assert [v.run_id for v in project.models.list()] == [short]


def test_qt_calls_keep_none_and_true_alive(qtbot: QtBot) -> None:
    """Live charts make thousands of Qt calls a minute: the bindings must not leak refs.

    PySide6 6.12.0 on Python 3.11 dropped a reference to None (and True) per call, and
    the app aborted after some 10^4 calls; pyproject.toml keeps it out.
    """
    widget = QWidget()
    qtbot.addWidget(widget)
    none, true = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(1000):
        widget.setEnabled(True)
        widget.isEnabled()
    assert sys.getrefcount(None) >= none - 10
    assert sys.getrefcount(True) >= true - 10
