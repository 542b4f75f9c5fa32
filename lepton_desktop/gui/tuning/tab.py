"""The Tuning tab: studies, their live charts and trials, and what to do with the best one.

The study list and summary are on the left; the charts (``tuning/chart_panel.py``),
the trials table and the selected trial's curves on the right. Slots gather input
and call one op (``tuning/ops.py``): ``project.tuning`` runs on the session's
DB thread and ``tune`` workers run in their own processes. While the tab is visible
and the shown study runs, :class:`~lepton_desktop.gui.tuning.poller.StudyPoller`
reads only new and unfinished trials each second; hidden, the tab marks itself dirty
and catches up when shown.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop.core.entities import DatasetVersion, Job, ModelVersion, Run, Study
from lepton_desktop.core.tuning.reading import COMPLETE, PRUNED, RUNNING, UNFINISHED
from lepton_desktop.core.tuning.study_view import StudyChange, StudyView
from lepton_desktop.gui.session import TUNING_JOB_KINDS, Changes, ProjectSession
from lepton_desktop.gui.tuning import ops
from lepton_desktop.gui.tuning.chart_panel import StudyCharts
from lepton_desktop.gui.tuning.ops import StudyEntry
from lepton_desktop.gui.tuning.poller import StudyPoller
from lepton_desktop.gui.tuning.study_dialog import StudyDialog
from lepton_desktop.gui.tuning.study_list import StudyList, StudySummary
from lepton_desktop.gui.tuning.trial_curve import TrialCurve
from lepton_desktop.gui.tuning.trial_table import TrialTable
from lepton_desktop.gui.widgets.actions import make_action
from lepton_desktop.gui.widgets.banner import MessageBanner
from lepton_desktop.gui.widgets.visible_poller import VisiblePollingTab


class TuningTab(VisiblePollingTab):
    """Create and run tuning studies, watch their trials, keep the best model.

    Args:
        parent: the parent widget.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session: ProjectSession | None = None
        self.entry: StudyEntry | None = None
        self.view: StudyView | None = None
        self.dialog: StudyDialog | None = None
        self._dirty = False
        self._versions: list[DatasetVersion] = []
        self._select_name: str | None = None
        self.studies = StudyList(self)
        self.summary = StudySummary(self)
        self.banner = MessageBanner(self)
        self.charts = StudyCharts(self)
        self.trials = TrialTable(self)
        self.curve = TrialCurve(self)
        self.poller = StudyPoller(self)
        self._make_actions()
        self._build_layout()
        self._connect()
        self._update_actions()

    def _make_actions(self) -> None:
        self.new_action = make_action(self, "&New Study…", "Create a tuning study", "Ctrl+Shift+N")
        self.start_action = make_action(
            self, "&Start", "Run the study's remaining trials", "Ctrl+Shift+R"
        )
        self.stop_action = make_action(
            self, "S&top", "Stop the study's trials (resume later)", "Ctrl+Shift+X"
        )
        self.extend_action = make_action(self, "Run &More", "Run this many more trials")
        self.promote_action = make_action(
            self, "&Promote Best", "Point the “champion” alias at the study's best model"
        )
        self.retrain_action = make_action(
            self,
            "&Retrain Best on Train+Val",
            "Train the best trial's settings on training and validation data",
        )
        self.more = QSpinBox(self)
        self.more.setRange(1, 100_000)
        self.more.setValue(10)
        self.more.setSuffix(" trials")
        self.more.setAccessibleName("Trials to run more")

    def _build_layout(self) -> None:
        left = QWidget(self)
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 6, 0)
        column.addWidget(_button(self.new_action, left, primary=True))
        column.addWidget(self.studies, 1)
        column.addWidget(self.summary)
        run_row = QHBoxLayout()
        run_row.addWidget(_button(self.start_action, left))
        run_row.addWidget(_button(self.stop_action, left))
        column.addLayout(run_row)
        more_row = QHBoxLayout()
        more_row.addWidget(self.more)
        more_row.addWidget(_button(self.extend_action, left))
        column.addLayout(more_row)
        column.addWidget(_button(self.promote_action, left))
        column.addWidget(_button(self.retrain_action, left))
        bottom = QSplitter(Qt.Orientation.Horizontal, self)
        bottom.addWidget(self.trials)
        bottom.addWidget(self.curve)
        bottom.setSizes([560, 440])
        right_split = QSplitter(Qt.Orientation.Vertical, self)
        right_split.addWidget(self.charts)
        right_split.addWidget(bottom)
        right_split.setStretchFactor(0, 3)
        right_split.setSizes([520, 260])
        right = QWidget(self)
        right_column = QVBoxLayout(right)
        right_column.setContentsMargins(0, 0, 0, 0)
        right_column.addWidget(self.banner)
        right_column.addWidget(right_split, 1)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([280, 1000])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 6)
        layout.addWidget(split)

    def _connect(self) -> None:
        self.new_action.triggered.connect(self.open_new_study_dialog)
        self.start_action.triggered.connect(lambda: self.start(None))
        self.extend_action.triggered.connect(lambda: self.start(self.more.value()))
        self.stop_action.triggered.connect(self.stop)
        self.promote_action.triggered.connect(self.promote_best)
        self.retrain_action.triggered.connect(self.retrain_best)
        self.studies.studySelected.connect(self._on_study_selected)
        self.poller.updated.connect(self._on_trials)
        self.trials.trialSelected.connect(self._on_trial_selected)
        self.charts.trialClicked.connect(self._on_trial_clicked)

    # -- session and refreshing --------------------------------------------------------

    def set_session(self, session: ProjectSession | None) -> None:
        """Show ``session``'s studies (None: nothing is open)."""
        self.session = session
        self.poller.set_session(session)
        self.entry = None
        self._show_view(None)
        self.studies.set_entries([])
        self.banner.hide()
        if session is not None:
            session.changed.connect(self._on_changed)
            session.jobsUpdated.connect(self._on_jobs_updated)
            session.jobEnded.connect(self._on_job_ended)
            self.charts.importance.set_runner(
                lambda work, done, error: session.background(
                    work, done, error, self.charts.importance
                )
            )
            self.curve.loader = lambda run_id, done: ops.load_run_curves(
                session, run_id, done, self.curve
            )
            self._dirty = True
            self.refresh_if_needed()
        self._update_actions()

    def refresh_studies(self) -> None:
        """Read the study list now."""
        if self.session is not None:
            self._dirty = False
            ops.load_studies(self.session, self._on_entries, self)

    def _catch_up(self, session: ProjectSession) -> None:
        if self._dirty:
            self.refresh_studies()
        self.poller.poll()

    def _on_changed(self, changes: Changes) -> None:
        self._dirty |= changes.studies or changes.datasets or changes.models
        self.refresh_if_needed()

    def _on_jobs_updated(self, jobs: list[Job]) -> None:
        # A study started elsewhere (the command line, another window) shows as running.
        running = {j.args.get("study") for j in jobs if j.kind in TUNING_JOB_KINDS}
        listed = {e.name for e in self.studies.entries if e.record and e.record.active}
        if running - listed - {None}:
            self._dirty = True
            self.refresh_if_needed()

    def _on_job_ended(self, job: Job) -> None:
        if job.kind in TUNING_JOB_KINDS and job.status == "failed":
            self._show_error(f"Tuning {job.args.get('study', '')} failed: {job.error}")

    def _on_entries(self, entries: list[StudyEntry]) -> None:
        select, self._select_name = self._select_name, None
        self.studies.set_entries(entries)
        if select is not None:
            self.studies.select_name(select)
        self._update_timer()

    def _update_timer(self) -> None:
        self.poller.set_running(self.isVisible() and self._live())

    def _live(self) -> bool:
        if self.entry is not None and self.entry.active:
            return True
        return self.view is not None and self.view.count(*UNFINISHED) > 0

    # -- the shown study -----------------------------------------------------------------

    def _on_study_selected(self, entry: StudyEntry | None) -> None:
        new_study = entry.optuna if entry is not None else None
        old_study = self.entry.optuna if self.entry is not None else None
        same = (
            new_study is not None
            and old_study is not None
            and new_study.study_id == old_study.study_id
        )
        self.entry = entry
        if not same:
            self._show_view(self.poller.show(new_study))
        self._show_summary()
        self._update_actions()
        self._update_timer()

    def _show_view(self, view: StudyView | None) -> None:
        self.view = view
        self.charts.set_view(view)
        self.trials.set_view(view)
        self.curve.show_trial(view, None)

    def _on_trials(self, change: StudyChange) -> None:
        if not change.any:
            return
        self.charts.refresh()
        self.trials.refresh()
        row = self.trials.selected_row()
        if (
            row is not None
            and self.view is not None
            and (bool((change.changed == row).any()) or self.view.states[row] == RUNNING)
        ):
            self.curve.show_trial(self.view, row, self._retrained(row))
        if change.finished and self.entry is not None and self.entry.record is not None:
            self._dirty = True  # the record's best trial and model move with trials
            self.refresh_if_needed()
        self._show_summary()
        self._update_actions()
        self._update_timer()

    def _show_summary(self) -> None:
        view, entry = self.view, self.entry
        if entry is None or view is None:
            self.summary.show_entry(entry)
            return
        finished = view.count(COMPLETE, PRUNED)
        self.summary.show_entry(entry, finished, view.count(RUNNING), _best_text(view))

    def _on_trial_selected(self, row: int | None) -> None:
        self.charts.select(row)
        self.curve.show_trial(self.view, row, self._retrained(row))

    def _retrained(self, row: int | None) -> tuple[int, str] | None:
        """The run of the registered model, when ``row`` is the best trial it retrained."""
        entry, view = self.entry, self.view
        if entry is None or entry.record is None or entry.best_run_id is None:
            return None
        if row is None or view is None or int(view.numbers[row]) != entry.record.best_trial:
            return None
        return entry.best_run_id, f"Run {entry.best_run_id} loss (retrained best)"

    def _on_trial_clicked(self, row: int) -> None:
        self.trials.select_row(row)
        self._on_trial_selected(row)

    # -- actions -----------------------------------------------------------------------

    def _update_actions(self) -> None:
        entry = self.entry
        record: Study | None = entry.record if entry else None
        busy = entry is not None and entry.active
        self.new_action.setEnabled(self.session is not None)
        can_start = record is not None and not busy and entry.finished < record.n_trials
        self.start_action.setEnabled(can_start)
        self.start_action.setText("&Resume" if record and record.status == "stopped" else "&Start")
        self.stop_action.setEnabled(record is not None and busy)
        self.extend_action.setEnabled(record is not None and not busy)
        self.more.setEnabled(record is not None and not busy)
        self.promote_action.setEnabled(record is not None and record.best_model is not None)
        self.retrain_action.setEnabled(
            record is not None and record.best_trial is not None and not record.multi_objective
        )

    def open_new_study_dialog(self) -> None:
        """Ask for a new study's options (the dialog stays open until one is created)."""
        session = self.session
        if session is None:
            return
        session.query(lambda p: p.datasets(), self._open_dialog, owner=self)

    def _open_dialog(self, versions: list[DatasetVersion]) -> None:
        self.dialog = StudyDialog(versions, self)
        self.dialog.submitted.connect(self._on_dialog_submitted)
        self.dialog.open()

    def _on_dialog_submitted(self, options: dict, start: bool) -> None:
        dialog = self.dialog
        if self.session is None or dialog is None:
            return
        ops.create_study(self.session, options, start, self._on_created, dialog.show_error)

    def _on_created(self, study: Study) -> None:
        self._select_name = study.name
        if self.dialog is not None:
            self.dialog.accept()
            self.dialog.deleteLater()
            self.dialog = None
        self.banner.hide()

    def start(self, n_trials: int | None) -> None:
        """Run the remaining trials (None), or ``n_trials`` more."""
        if self.session is not None and self.entry is not None and self.entry.record:
            ops.start_study(self.session, self.entry.name, n_trials, self._show_error)

    def stop(self) -> None:
        """Stop the shown study's trials."""
        if self.session is not None and self.entry is not None and self.entry.record:
            ops.stop_study(self.session, self.entry, self._show_error)

    def promote_best(self) -> None:
        """Make the study's best model the champion."""
        if self.session is not None and self.entry is not None and self.entry.record:
            ops.promote_best(self.session, self.entry.name, self._on_promoted, self._show_error)

    def retrain_best(self) -> None:
        """Queue the best trial's settings on train+val as a new run."""
        if self.session is not None and self.entry is not None and self.entry.record:
            ops.retrain_best(
                self.session, self.entry.name, self._on_retrain_queued, self._show_error
            )

    def _on_promoted(self, version: ModelVersion) -> None:
        self.banner.show_message(f"{version.ref} is now the champion.", "success")

    def _on_retrain_queued(self, run: Run) -> None:
        self.banner.show_message(
            f"Run {run.id} is training the best trial on train+val (see the Training tab).", "info"
        )

    def _show_error(self, exc: BaseException | str) -> None:
        self.banner.show_message(str(exc), "error")


def _best_text(view: StudyView) -> str:
    if view.n_objectives > 1:
        return f"{view.count(COMPLETE)} completed trials; see the Pareto front"
    row = view.best_row()
    if row is None:
        return "No completed trial yet"
    params = ", ".join(f"{n}={c.text(row)}" for n, c in view.params.items() if c.text(row))
    value = float(view.values[row, 0])
    shown = f"{value:.5g}" if np.isfinite(value) else str(value)
    return (
        f"Best {view.objective_name(0)}: <b>{shown}</b> (trial {int(view.numbers[row])})"
        f"<br><small>{params}</small>"
    )


def _button(action: object, parent: QWidget, primary: bool = False) -> QToolButton:
    button = QToolButton(parent)
    button.setDefaultAction(action)  # type: ignore[arg-type]
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
    if primary:
        button.setObjectName("primaryButton")
        button.setStyleSheet(
            "QToolButton#primaryButton { font-weight: 600; padding: 6px; border-radius: 4px;"
            " background: palette(highlight); color: palette(highlighted-text); }"
            "QToolButton#primaryButton:disabled { background: palette(button);"
            " color: palette(mid); }"
        )
    return button
