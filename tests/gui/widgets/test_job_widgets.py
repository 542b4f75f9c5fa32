"""Job progress, in a tab and in the status bar, on real job rows of a project file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from lepton_desktop.core.entities import Job
from lepton_desktop.core.project import Project
from lepton_desktop.gui.session import DATASET_JOB_KINDS
from lepton_desktop.gui.widgets.job_widgets import JobPanel, JobStatus
from tests.gui.conftest import IRIS

pytestmark = pytest.mark.gui


@pytest.fixture
def jobs(tmp_project: Path) -> list[Job]:
    """Two queued imports and a training job, newest first (as the session lists them)."""
    with Project.open(tmp_project) as project:
        project.create_job("import", {"source": str(IRIS), "name": "iris"})
        project.create_job("import", {"source": str(IRIS), "name": "flowers"})
        project.create_job("train", {"run_id": 1})
        return project.jobs()


def test_job_panel_shows_the_newest_job_of_its_kinds_and_asks_to_cancel_it(
    qtbot: QtBot, jobs: list[Job]
) -> None:
    panel = JobPanel(DATASET_JOB_KINDS)
    qtbot.addWidget(panel)
    panel.update_jobs(jobs)
    newest = next(j for j in jobs if j.kind == "import")
    assert panel.job == newest
    assert panel.label.text() == "Importing flowers: starting…  (+1 more)"
    with qtbot.waitSignal(panel.cancelRequested, timeout=1000) as blocker:
        panel.cancel.click()
    assert blocker.args == [newest.id]
    assert not panel.cancel.isEnabled()  # asked once
    panel.update_jobs([j for j in jobs if j.kind == "train"])  # another tab's only
    assert panel.job is None and panel.isHidden()


def test_job_status_counts_every_job_and_cancels_the_newest(
    qtbot: QtBot, jobs: list[Job]
) -> None:
    status = JobStatus()
    qtbot.addWidget(status)
    status.update_jobs(jobs)
    assert status.label.text() == "3 jobs running"
    assert status.toolTip() == "Training run 1: starting…"
    with qtbot.waitSignal(status.cancelRequested, timeout=1000) as blocker:
        status.cancel.click()
    assert blocker.args == [jobs[0].id]
    status.update_jobs([])
    assert status.isHidden()
