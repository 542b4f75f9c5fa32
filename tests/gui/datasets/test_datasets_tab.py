"""The Datasets tab, driven through the real window and real worker processes."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox
from pytestqt.qtbot import QtBot

from lepton_desktop.core.project import Project
from lepton_desktop.gui.datasets.import_dialog import ImportDialog
from lepton_desktop.gui.main_window import MainWindow
from tests.gui.conftest import IRIS, WORKER_TIMEOUT_MS

pytestmark = pytest.mark.gui
OpenProject = Callable[[Path], None]


def _ok(dialog: object) -> object:
    return dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)  # type: ignore[attr-defined]


def _fill_import(qtbot: QtBot, window: MainWindow, source: Path) -> ImportDialog:
    dialog = window.datasets_tab.open_import_dialog(source)
    assert dialog is not None
    qtbot.waitUntil(lambda: _ok(dialog).isEnabled(), timeout=10_000)
    return dialog


def _jobs(path: Path) -> list[object]:
    with Project.open(path) as project:
        return project.jobs()


def test_import_a_csv_through_a_worker_and_see_its_rows(
    qtbot: QtBot, window: MainWindow, tmp_project: Path, open_project: OpenProject
) -> None:
    open_project(tmp_project)
    dialog = _fill_import(qtbot, window, IRIS)
    dialog.target.setCurrentText("species")
    assert dialog.job_args() == {"source": str(IRIS), "name": "iris", "kind": "tabular",
                                 "target": "species", "time_column": None}
    with qtbot.waitSignal(window.session.jobs.jobStarted, timeout=10_000):
        dialog.accept()
    tab = window.datasets_tab
    qtbot.waitUntil(lambda: [v.ref for v in tab.versions] == ["iris:1"], timeout=WORKER_TIMEOUT_MS)
    model = tab.view.preview
    qtbot.waitUntil(lambda: model.version is not None and model.is_loaded(0), timeout=10_000)
    assert model.rowCount() == 150
    assert [model.headerData(i, Qt.Orientation.Horizontal) for i in range(5)] == [
        "sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
    assert model.data(model.index(0, 0)) == "5.1"
    assert model.data(model.index(149, 4)) == "virginica"
    assert tab.banner.level == "success"
    stats = tab.view.columns_panel
    assert stats.histogram is None  # read only once its tab is shown
    tab.view.tabs.setCurrentWidget(stats)
    qtbot.waitUntil(lambda: stats.histogram is not None, timeout=10_000)
    assert stats.histogram.labels == ["setosa", "versicolor", "virginica"] or \
        sorted(stats.histogram.labels) == ["setosa", "versicolor", "virginica"]


def test_a_new_project_takes_an_import_at_once(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    # The worker (another process) must be able to open a project the GUI just created.
    path = tmp_path / "fresh.lepton"
    window.opener.create(path)
    qtbot.waitUntil(lambda: window.session is not None and window.session.is_open,
                    timeout=10_000)
    _fill_import(qtbot, window, IRIS).accept()
    tab = window.datasets_tab
    qtbot.waitUntil(lambda: [v.ref for v in tab.versions] == ["iris:1"], timeout=WORKER_TIMEOUT_MS)


def test_a_worker_that_dies_before_starting_its_job_is_reported(
    qtbot: QtBot, window: MainWindow, tmp_project: Path, open_project: OpenProject,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lepton_desktop.core.system import launch

    monkeypatch.setattr(launch, "worker_argv", lambda kind, project, job_id: [
        sys.executable, "-c", "import sys; sys.exit('error: the worker could not start')"])
    open_project(tmp_project)
    _fill_import(qtbot, window, IRIS).accept()
    banner = window.datasets_tab.banner
    qtbot.waitUntil(lambda: banner.isVisible() and banner.level == "error",
                    timeout=WORKER_TIMEOUT_MS)
    assert banner.text == "Importing iris failed: error: the worker could not start"
    qtbot.waitUntil(lambda: _jobs(tmp_project) == [], timeout=10_000)
    assert window.session.active_jobs == []


def test_the_import_dialog_reports_an_unreadable_source_inline(
    qtbot: QtBot, window: MainWindow, tmp_project: Path, tmp_path: Path,
    open_project: OpenProject,
) -> None:
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3,4,5\n", encoding="utf-8")
    open_project(tmp_project)
    dialog = window.datasets_tab.open_import_dialog(ragged)
    qtbot.waitUntil(lambda: "line 3" in dialog.status.text(), timeout=10_000)
    assert "expected 2 fields" in dialog.status.text()
    assert not _ok(dialog).isEnabled()
    dialog.kind.setCurrentIndex(dialog.kind.findData("images"))
    assert not _ok(dialog).isEnabled()
    dialog.reject()


def test_a_failed_import_shows_its_error_and_is_forgotten(
    qtbot: QtBot, window: MainWindow, tmp_project: Path, tmp_path: Path,
    open_project: OpenProject,
) -> None:
    source = tmp_path / "gone.csv"
    source.write_text("a,b\n1,2\n", encoding="utf-8")
    open_project(tmp_project)
    dialog = _fill_import(qtbot, window, source)
    source.unlink()  # gone by the time the worker looks
    dialog.accept()
    banner = window.datasets_tab.banner
    qtbot.waitUntil(lambda: banner.isVisible() and banner.level == "error",
                    timeout=WORKER_TIMEOUT_MS)
    assert "Importing gone failed" in banner.text and "no such file" in banner.text
    qtbot.waitUntil(lambda: _jobs(tmp_project) == [], timeout=10_000)
    assert window.datasets_tab.versions == []


def test_cancel_an_import_job(
    qtbot: QtBot, window: MainWindow, tmp_project: Path, tmp_path: Path,
    open_project: OpenProject, make_csv: Callable[..., Path],
) -> None:
    big = make_csv(tmp_path / "big.csv", rows=1_000_000)
    open_project(tmp_project)
    dialog = _fill_import(qtbot, window, big)
    dialog.accept()
    panel = window.datasets_tab.job_panel
    qtbot.waitUntil(lambda: panel.isVisible() and panel.job is not None
                    and panel.job.status == "running" and panel.job.progress_done > 0,
                    timeout=WORKER_TIMEOUT_MS)
    assert window.job_status.isVisible()
    assert "1 job running" in window.job_status.label.text()
    panel.cancel.click()
    banner = window.datasets_tab.banner
    qtbot.waitUntil(lambda: banner.isVisible() and banner.level == "info",
                    timeout=WORKER_TIMEOUT_MS)
    assert "cancelled" in banner.text
    qtbot.waitUntil(lambda: not window.session.jobs.running_ids(), timeout=WORKER_TIMEOUT_MS)
    qtbot.waitUntil(lambda: not panel.isVisible(), timeout=10_000)
    qtbot.waitUntil(lambda: _jobs(tmp_project) == [], timeout=10_000)
    with Project.open(tmp_project) as project:
        assert project.datasets() == []
        assert project.integrity_ok()


def test_cancel_escalates_to_terminate_then_kill(
    qtbot: QtBot, window: MainWindow, tmp_project: Path, open_project: OpenProject,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lepton_desktop.core.system import launch

    # A worker that never looks at its cancel flag and ignores SIGTERM.
    stubborn = ("import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "print('ready', flush=True); time.sleep(120)")
    monkeypatch.setattr(launch, "worker_argv",
                        lambda kind, project, job_id: [sys.executable, "-c", stubborn])
    open_project(tmp_project)
    runner = window.session.jobs
    runner.grace_ms, runner.kill_ms = 300, 300
    with qtbot.waitSignal(runner.jobStarted, timeout=10_000) as started:
        _fill_import(qtbot, window, IRIS).accept()
    job_id = started.args[0]
    qtbot.waitUntil(lambda: "ready" in runner.output(job_id), timeout=WORKER_TIMEOUT_MS)
    with qtbot.waitSignal(runner.jobFinished, timeout=10_000) as finished:
        runner.cancel(job_id)
    assert finished.args == [job_id, -1]  # killed: it would not stop by itself
    banner = window.datasets_tab.banner
    qtbot.waitUntil(lambda: banner.isVisible(), timeout=10_000)
    assert banner.level == "info" and "cancelled" in banner.text
    qtbot.waitUntil(lambda: _jobs(tmp_project) == [], timeout=10_000)


def test_prep_dialog_previews_validates_and_makes_a_version(
    qtbot: QtBot, window: MainWindow, iris_project: Path, open_project: OpenProject
) -> None:
    open_project(iris_project)
    dialog = window.datasets_tab.open_prep_dialog()
    assert dialog is not None
    assert dialog.split.isChecked()  # iris:1 has no split yet: offer one
    dialog.split.setChecked(False)
    assert not _ok(dialog).isEnabled()  # nothing chosen
    assert dialog.error_label.text() == "Choose at least one step."
    dialog.dedupe.setChecked(True)
    qtbot.waitUntil(lambda: dialog.preview is not None, timeout=10_000)
    assert dialog.result_label.text().startswith("Rows: 150 → 149")
    assert _ok(dialog).isEnabled()
    dialog.split.setChecked(True)
    dialog.fractions[0].setValue(0.9)  # 0.9 + 0.15 + 0.15 != 1
    assert "split" in dialog.error_label.text()
    assert dialog.error_label.isVisible() and not _ok(dialog).isEnabled()
    dialog.fractions[0].setValue(0.7)
    dialog.scale.setCurrentIndex(dialog.scale.findData("standard"))
    qtbot.waitUntil(lambda: dialog.preview is not None and _ok(dialog).isEnabled(),
                    timeout=10_000)
    dialog.accept()
    tab = window.datasets_tab
    qtbot.waitUntil(lambda: "iris:2" in [v.ref for v in tab.versions], timeout=WORKER_TIMEOUT_MS)
    qtbot.waitUntil(lambda: tab.view.version is not None and tab.view.version.ref == "iris:2",
                    timeout=10_000)
    model = tab.view.preview  # switches once the first page of iris:2 is read
    qtbot.waitUntil(lambda: model.version is tab.view.version and model.is_loaded(0),
                    timeout=10_000)
    assert model.has_split and model.headerData(5, Qt.Orientation.Horizontal) == "split"
    assert model.data(model.index(0, 5)) in ("train", "val", "test")
    assert "from iris:1" in tab.view.summary.text()


def test_delete_a_dataset_after_confirming(
    qtbot: QtBot, window: MainWindow, iris_project: Path, open_project: OpenProject
) -> None:
    open_project(iris_project)
    tab = window.datasets_tab
    tab.delete_action.trigger()
    box = window.findChild(QMessageBox, "questionBox")
    qtbot.waitUntil(lambda: box.isVisible())
    next(b for b in box.buttons() if b.text() == "Delete").click()
    qtbot.waitUntil(lambda: tab.versions == [] and tab.tree.version_count() == 0,
                    timeout=10_000)
    assert not tab.prep_action.isEnabled()
    assert not tab.view.tabs.isEnabled()
    assert tab.view.summary.text().startswith("Select a dataset version")


def test_an_import_with_infinities_shows_its_warning_beside_the_summary(
    qtbot: QtBot, window: MainWindow, tmp_project: Path, tmp_path: Path,
    open_project: OpenProject,
) -> None:
    source = tmp_path / "inf.csv"
    source.write_text("x,y\n1,a\ninf,b\n-Infinity,a\n1e309,b\n", encoding="utf-8")
    open_project(tmp_project)
    _fill_import(qtbot, window, source).accept()
    banner = window.datasets_tab.banner
    qtbot.waitUntil(lambda: banner.isVisible() and banner.level == "info",
                    timeout=WORKER_TIMEOUT_MS)
    assert "Importing inf finished: inf:1, 4 rows." in banner.text
    assert "Warning: 3 value(s) that are not finite numbers" in banner.text
    assert "treated as missing: x (3)" in banner.text


def test_the_import_dialog_refuses_a_name_with_invisible_characters(
    qtbot: QtBot, window: MainWindow, tmp_project: Path, open_project: OpenProject
) -> None:
    open_project(tmp_project)
    dialog = _fill_import(qtbot, window, IRIS)
    dialog.name.setText("iris\u202etxt.exe")  # a right-to-left override, pasted in
    dialog.name.textEdited.emit(dialog.name.text())
    assert not _ok(dialog).isEnabled()
    assert "invisible formatting character (U+202E)" in dialog.status.text()
    dialog.name.setText("iris")
    dialog.name.textEdited.emit("iris")
    assert _ok(dialog).isEnabled()
    dialog.reject()
