"""Training widgets on their own: the new-run form on a real project's versions, and
the live charts fed with a queued run's points."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from lepton_desktop.core.project import Project
from lepton_desktop.core.training.config import TrainConfig
from lepton_desktop.gui.training.charts import TrainingCharts
from lepton_desktop.gui.training.form import FormError, TrainingForm
from lepton_desktop.gui.training.ops import Cursor, RunUpdate
from tests.gui.conftest import REPO

pytestmark = pytest.mark.gui
NILE = REPO / "resources" / "sample_data" / "nile.csv"


def test_form_offers_the_versions_fits_the_architecture_and_reads_a_config(
    qtbot: QtBot, iris_project: Path
) -> None:
    with Project.open(iris_project) as project:
        project.import_dataset(NILE, "nile", kind="timeseries", target="volume",
                               time_column="year")
        versions = project.datasets()
    form = TrainingForm()
    qtbot.addWidget(form)
    form.set_versions(versions)
    with qtbot.waitSignal(form.changed, timeout=1000):
        form.select_dataset("nile:1")
    assert form.arch.currentData() == "rnn"  # the first architecture that fits a series
    form.select_dataset("iris:1")
    assert form.arch.currentData() == "mlp"
    assert form.model_name.placeholderText() == "iris-mlp"

    form.lr.setText("0")  # a learning rate must be above 0
    assert not form.lr.hasAcceptableInput()
    with pytest.raises(FormError, match="Learning rate"):
        form.config()
    form.lr.setText("3e-4")
    form.hidden.setText("64, 32")
    form.epochs.setValue(7)
    config = form.config()
    assert (config.lr, config.hidden, config.epochs) == (3e-4, (64, 32), 7)


def test_live_charts_draw_a_runs_points_and_break_the_line_on_a_resume(
    qtbot: QtBot, iris_project: Path
) -> None:
    with Project.open(iris_project) as project:
        run, _job_id = project.runs.queue("iris:1", TrainConfig(epochs=2))
    charts = TrainingCharts()
    qtbot.addWidget(charts)
    charts.show_runs([run.id])
    steps = np.arange(1.0, 6.0)
    charts.add(RunUpdate(
        run, False, {"loss": (steps, 1 / steps), "val_r2": (np.array([1.0]), np.array([0.5]))},
        {"gpu_percent": (np.array([0.0]), np.array([40.0]))}, Cursor(),
    ))
    charts.redraw()
    assert charts.charts["step"].points(run.id, "loss") == 5
    assert charts.title("cpu") == "CPU and GPU %"
    assert charts.title("metric") == "R² per epoch"

    # A resumed run repeats the steps after its checkpoint: a gap, not a line back.
    charts.add(RunUpdate(run, False, {"loss": (steps[2:], 1 / steps[2:])}, {}, Cursor()))
    charts.redraw()
    _x, y = charts.charts["step"].curve_data(run.id, "loss")
    assert len(y) == 5 + 1 + 3 and np.isnan(y[5])
    charts.show_runs([])
    assert charts.charts["step"].visible_curves() == []
