"""Tuning widgets on their own, on a real study file: the study list and summary, the
trials table and a trial's curve, each fed the way the tab feeds it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from lepton_desktop.core.project import Project
from lepton_desktop.core.tuning import reading
from lepton_desktop.core.tuning.reading import COMPLETE
from lepton_desktop.core.tuning.study_view import StudyView
from lepton_desktop.gui.tuning.ops import read_studies
from lepton_desktop.gui.tuning.study_list import StudyList, StudySummary
from lepton_desktop.gui.tuning.trial_curve import TrialCurve
from lepton_desktop.gui.tuning.trial_table import TrialTable
from tests.study_factory import make_study_file

pytestmark = pytest.mark.gui


@pytest.fixture
def study_file(tmp_path: Path) -> Path:
    """A project holding one Optuna study of 40 trials, one of them still running."""
    return make_study_file(tmp_path / "study.lepton", 40, name="search", running=1)


def _view(path: Path) -> StudyView:
    """The study's view, read as the poller reads it (everything new since nothing)."""
    with Project.open(path) as project:
        (study,) = reading.list_studies(project)
        view = StudyView(study)
        view.apply(reading.read_delta(project, view.cursor()))
    return view


def test_study_list_shows_a_study_made_outside_the_app(qtbot: QtBot, study_file: Path) -> None:
    with Project.open(study_file) as project:
        entries = read_studies(project)
    studies, summary = StudyList(), StudySummary()
    qtbot.addWidget(studies)
    qtbot.addWidget(summary)
    with qtbot.waitSignal(studies.studySelected, timeout=1000) as blocker:
        studies.set_entries(entries)
    (entry,) = entries
    assert blocker.args == [entry] and entry.record is None
    assert [studies.item(0, c).text() for c in range(2)] == ["search", "external"]
    summary.show_entry(entry)
    assert "another program" in summary.text.text()
    assert summary.progress.isHidden()  # no planned trial count: not one of ours


def test_trials_table_filters_by_state_and_reports_the_selected_trial(
    qtbot: QtBot, study_file: Path
) -> None:
    view = _view(study_file)
    table = TrialTable()
    qtbot.addWidget(table)
    table.set_view(view)
    assert table.count.text() == "40 trials"
    table.state_filter.setCurrentIndex(table.state_filter.findText("Running"))
    assert table.model.rowCount() == 1
    assert table.count.text() == "1 of 40 trials"
    running = int(table.model.order[0])
    with qtbot.waitSignal(table.trialSelected, timeout=1000) as blocker:
        table.table.selectRow(0)
    assert blocker.args == [running] and table.selected_row() == running

    complete = int(np.flatnonzero(view.states == COMPLETE)[0])
    curve = TrialCurve()
    qtbot.addWidget(curve)
    curve.show_trial(view, complete)
    _steps, values = curve.curve.getData()
    assert len(values) and np.array_equal(values, view.curve(complete)[1])
    assert f"Trial {int(view.numbers[complete])}" in curve.header.text()
