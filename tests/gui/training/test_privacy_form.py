"""The Training form's "Train with privacy" group, and a private run started from it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtWidgets import QScrollArea
from pytestqt.qtbot import QtBot

from lepton_desktop.core.project import Project
from lepton_desktop.gui.main_window import MainWindow
from lepton_desktop.gui.training.form import FormError, TrainingForm
from lepton_desktop.gui.training.run_table import COLUMNS
from lepton_desktop.gui.tuning.study_dialog import StudyDialog
from tests.gui.conftest import WORKER_TIMEOUT_MS
from tests.gui.training.test_training_tab import _db_counts, _open_training, _status, _train

pytestmark = pytest.mark.gui
OpenProject = Callable[[Path], None]
SCREENSHOTS = Path(__file__).resolve().parents[3] / "resources" / "screenshots"


def test_the_privacy_group_reads_into_the_config(qtbot: QtBot) -> None:
    form = TrainingForm()
    qtbot.addWidget(form)
    assert not form.privacy.isChecked() and not form.config().private  # off by default
    assert "DP-SGD" in form.privacy.toolTip() and "ε" in form.dp_epsilon.toolTip()
    form.privacy.setChecked(True)
    form.dp_epsilon.setText("2")
    form.dp_max_grad_norm.setText("0.5")
    config = form.config()
    assert (config.dp_epsilon, config.dp_delta, config.dp_max_grad_norm) == (2.0, None, 0.5)
    assert config.dp_batch_norm == "replace"
    form.dp_delta.setText("1e-6")
    form.dp_batch_norm.setCurrentIndex(1)
    config = form.config()
    assert (config.dp_delta, config.dp_batch_norm) == (1e-6, "refuse")
    for edit, text, named in (
        (form.dp_epsilon, "0", "Privacy ε"),
        (form.dp_delta, "2", "Privacy δ"),
        (form.dp_max_grad_norm, "-1", "Privacy clipping C"),
    ):
        good = edit.text()
        edit.setText(text)
        with pytest.raises(FormError, match=named):
            form.config()
        edit.setText(good)
    form.privacy.setChecked(False)
    assert not form.config().private


@pytest.mark.slow
def test_a_private_run_started_from_the_form_stores_and_shows_its_budget(
    qtbot: QtBot, window: MainWindow, iris_project: Path, open_project: OpenProject
) -> None:
    tab = _open_training(qtbot, window, iris_project, open_project)
    tab.form.strong_baseline.setChecked(False)
    tab.form.privacy.setChecked(True)
    tab.form.dp_epsilon.setText("0.01")  # unreachable: refused, nothing queued
    before = _db_counts(iris_project)
    tab.form.select_dataset("iris:1")
    tab.form.epochs.setValue(2)
    tab.train()
    qtbot.waitUntil(lambda: "cannot be met" in tab.form.error.text(), timeout=30_000)
    assert _db_counts(iris_project) == before
    tab.form.dp_epsilon.setText("4")
    tab.form.dp_delta.setText("1e-4")
    run_id = _train(qtbot, tab, epochs=2)
    with Project.open(iris_project) as project:
        config = project.runs.get(run_id).config
    assert (config["dp_epsilon"], config["dp_delta"], config["dp_max_grad_norm"]) == (
        4.0,
        1e-4,
        1.0,
    )
    qtbot.waitUntil(lambda: _status(tab, run_id) == "finished", timeout=WORKER_TIMEOUT_MS)
    model = tab.table.runs
    spent = model.run(run_id).evaluation["privacy"]
    cell = model.data(model.index(model.row_of(run_id), COLUMNS.index("ε")))
    assert cell == f"{spent['epsilon']:.3g}" and 0 < spent["epsilon"] <= 4
    view = tab.evaluation
    tab.views.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.has_evaluation and view.run.id == run_id, timeout=10_000)
    assert view.privacy.isVisibleTo(view)
    assert f"ε = {spent['epsilon']:.3g} spent (target 4), δ = 0.0001" in view.privacy.text()
    # Rendered for the README when asked (LEPTON_SCREENSHOTS=1), never on ordinary runs.
    if os.environ.get("LEPTON_SCREENSHOTS"):
        window.resize(1300, 860)
        qtbot.wait(300)
        scroll = tab.form.parentWidget().parentWidget()
        assert isinstance(scroll, QScrollArea)
        scroll.ensureWidgetVisible(tab.form.privacy)
        qtbot.wait(300)
        window.grab().save(str(SCREENSHOTS / "training-privacy-light.png"))


def test_the_new_study_dialog_fixes_epsilon_for_every_trial(
    qtbot: QtBot, iris_project: Path
) -> None:
    with Project.open(iris_project) as project:
        versions = project.datasets()
        dialog = StudyDialog(versions)
        qtbot.addWidget(dialog)
        assert dialog.dp_epsilon.text() == "off" and "dp_epsilon" not in dialog.options()
        dialog.dp_epsilon.setValue(3.0)
        options = dialog.options()
        assert options["dp_epsilon"] == 3.0
        study = project.tuning.create(**options)
        assert study.options["dp_epsilon"] == 3.0
