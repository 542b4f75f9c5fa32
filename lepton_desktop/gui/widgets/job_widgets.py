"""Job progress: in a tab (the newest job of its kinds) and in the status bar (all jobs)."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QToolButton,
    QWidget,
)

from lepton_desktop.core.entities import Job
from lepton_desktop.gui.session import describe_job

_STEPS = 1000


def set_progress(bar: QProgressBar, job: Job) -> None:
    """Show a job's fraction, or a busy bar when its total is unknown."""
    fraction = job.fraction
    if fraction is None:
        bar.setRange(0, 0)
        return
    bar.setRange(0, _STEPS)
    bar.setValue(int(fraction * _STEPS))


def job_text(job: Job) -> str:
    """"Importing iris: 12 MB read" style text of a job."""
    text = describe_job(job)
    if job.cancel_requested:
        return f"{text}: cancelling…"
    if job.status == "queued":
        return f"{text}: starting…"
    return f"{text}: {job.message}" if job.message else text


class JobPanel(QFrame):
    """Progress and a Cancel button for the newest active job of some kinds.

    Args:
        kinds: the job kinds shown (the tab's own).
        parent: the parent widget.
    """

    cancelRequested = Signal(int)  # job id

    def __init__(self, kinds: Sequence[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("jobPanel")
        self._kinds = tuple(kinds)
        self.job: Job | None = None
        self.label = QLabel(self)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.bar = QProgressBar(self)
        self.bar.setTextVisible(False)
        self.bar.setMaximumWidth(260)
        self.cancel = QPushButton("Cancel", self)
        self.cancel.setToolTip("Stop this job; nothing it started is kept")
        self.cancel.clicked.connect(self._on_cancel_clicked)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 2)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel)
        self.hide()

    def update_jobs(self, jobs: Sequence[Job]) -> None:
        """Show the newest of ``jobs`` of this panel's kinds (hidden when there is none)."""
        mine = [j for j in jobs if j.kind in self._kinds]
        self.job = mine[0] if mine else None
        self.setVisible(self.job is not None)
        if self.job is None:
            return
        more = f"  (+{len(mine) - 1} more)" if len(mine) > 1 else ""
        self.label.setText(job_text(self.job) + more)
        set_progress(self.bar, self.job)
        self.cancel.setEnabled(not self.job.cancel_requested)

    def _on_cancel_clicked(self) -> None:
        if self.job is not None:
            self.cancel.setEnabled(False)
            self.cancelRequested.emit(self.job.id)


class JobStatus(QWidget):
    """Status-bar summary: how many jobs run, the newest one's progress, Cancel.

    Args:
        parent: the parent widget.
    """

    cancelRequested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.job: Job | None = None
        self.label = QLabel(self)
        self.bar = QProgressBar(self)
        self.bar.setTextVisible(False)
        self.bar.setFixedWidth(120)
        self.bar.setMaximumHeight(14)
        self.cancel = QToolButton(self)
        self.cancel.setText("Cancel")
        self.cancel.setAutoRaise(True)
        self.cancel.setToolTip("Cancel the newest job")
        self.cancel.clicked.connect(self._on_cancel_clicked)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel)
        self.hide()

    def update_jobs(self, jobs: Sequence[Job]) -> None:
        """Show the count of active jobs and the newest one's progress."""
        self.job = jobs[0] if jobs else None
        self.setVisible(self.job is not None)
        if self.job is None:
            return
        count = len(jobs)
        self.label.setText(f"{count} job{'s' if count != 1 else ''} running")
        self.setToolTip(job_text(self.job))
        set_progress(self.bar, self.job)
        self.cancel.setEnabled(not self.job.cancel_requested)

    def _on_cancel_clicked(self) -> None:
        if self.job is not None:
            self.cancel.setEnabled(False)
            self.cancelRequested.emit(self.job.id)
