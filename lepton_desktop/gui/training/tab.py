"""The Training tab: the new-run form, live charts, the runs table and the evaluation.

Slots gather input and call one op (``training/ops.py``); the worker runs in
its own process and the tab polls the project file incrementally while a run is
active and the tab is visible (``training/poller.py``). Hidden, the tab only
marks itself dirty and catches up when shown (Anki's ``refresh_if_needed``).
"""

from __future__ import annotations

import re

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QTabWidget,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop.core.entities import Job, Run
from lepton_desktop.gui.dialogs import ask
from lepton_desktop.gui.ops import forget_job
from lepton_desktop.gui.session import TRAINING_JOB_KINDS, Changes, ProjectSession
from lepton_desktop.gui.training import ops
from lepton_desktop.gui.training import run_format as fmt
from lepton_desktop.gui.training.charts import TrainingCharts
from lepton_desktop.gui.training.eval_view import EvaluationView
from lepton_desktop.gui.training.explain_panel import ExplainPanel
from lepton_desktop.gui.training.form import FormError, TrainingForm
from lepton_desktop.gui.training.ops import RunsSnapshot, RunUpdate
from lepton_desktop.gui.training.poller import RunPoller
from lepton_desktop.gui.training.run_actions import RunActions
from lepton_desktop.gui.training.run_table import RunTable
from lepton_desktop.gui.widgets.banner import MessageBanner
from lepton_desktop.gui.widgets.notifier import Notifier
from lepton_desktop.gui.widgets.visible_poller import VisiblePollingTab

_TRAIN_BUTTON_STYLE = """
QToolButton#trainButton { font-weight: 600; padding: 7px; border-radius: 4px;
    background: palette(highlight); color: palette(highlighted-text); }
QToolButton#trainButton:hover { background: palette(link); }
QToolButton#trainButton:disabled { background: palette(button); color: palette(mid); }
"""
#: Core messages name options as the command line spells them; the form's fields.
_FLAG_FIELDS = {"name": "model_name", "lr": "lr", "batch-size": "batch_size"}


class TrainingTab(VisiblePollingTab):
    """Train models, watch them learn, compare runs and read their evaluation.

    Args:
        parent: the parent widget.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session: ProjectSession | None = None
        self._dirty_runs = self._dirty_datasets = False
        self._select_ids: list[int] | None = None
        self._submitting = False
        self.actions_ = RunActions(self)
        self.form = TrainingForm(self)
        self.banner = MessageBanner(self)
        self.charts = TrainingCharts(self)
        self.evaluation = EvaluationView(self)
        self.explain = ExplainPanel(self)
        self.table = RunTable(self)
        self.poller = RunPoller(self.charts, self)
        self.notifier = Notifier(self)
        self.show_archived = QCheckBox("Show archived", self)
        self._build_layout()
        self._connect()
        self._update_actions()

    def _build_layout(self) -> None:
        self.views = QTabWidget(self)
        self.views.setDocumentMode(True)
        self.views.addTab(self.charts, "Live charts")
        self.views.addTab(self.evaluation, "Evaluation")
        self.views.addTab(self.explain, "Explain")
        right_split = QSplitter(Qt.Orientation.Vertical, self)
        right_split.addWidget(self.views)
        right_split.addWidget(self.table)
        right_split.setStretchFactor(0, 3)
        right_split.setSizes([520, 200])
        right = QWidget(self)
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self._run_toolbar())
        column.addWidget(self.banner)
        column.addWidget(right_split, 1)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(self._form_panel())
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([330, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 6)
        layout.addWidget(split)

    def _form_panel(self) -> QWidget:
        scroll = QScrollArea(self)
        scroll.setWidget(self.form)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.train_button = QToolButton(self)
        self.train_button.setDefaultAction(self.actions_.train)
        self.train_button.setObjectName("trainButton")
        self.train_button.setStyleSheet(_TRAIN_BUTTON_STYLE)
        self.train_button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        panel = QWidget(self)
        panel.setMinimumWidth(300)
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(0, 0, 6, 0)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.train_button)
        return panel

    def _run_toolbar(self) -> QToolBar:
        toolbar = QToolBar(self)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        a = self.actions_
        toolbar.addActions([a.pause, a.resume, a.stop])
        toolbar.addSeparator()
        toolbar.addActions([a.champion, a.archive, a.delete])
        spacer = QWidget(self)
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        toolbar.addWidget(spacer)
        toolbar.addWidget(self.show_archived)
        return toolbar

    def _connect(self) -> None:
        a = self.actions_
        a.train.triggered.connect(self.train)
        a.pause.triggered.connect(lambda: self._control("pause"))
        a.stop.triggered.connect(lambda: self._control("stop"))
        a.resume.triggered.connect(self.resume_selected)
        a.archive.triggered.connect(self.archive_selected)
        a.delete.triggered.connect(self.delete_selected)
        a.champion.triggered.connect(self.set_champion)
        self.table.selectionChangedIds.connect(self._on_selection)
        self.table.menuRequested.connect(a.fill_menu)
        self.poller.updated.connect(self._on_polled)
        self.show_archived.toggled.connect(lambda _on: self.refresh_runs())
        self.evaluation.confusion.cellClicked.connect(self._explain_cell)
        self.form.changed.connect(self._update_actions)

    # -- session and refreshing --------------------------------------------------------

    def set_session(self, session: ProjectSession | None) -> None:
        """Show ``session``'s runs (None: nothing is open)."""
        self.session = session
        self.poller.set_session(session)
        self.table.runs.set_snapshot(RunsSnapshot([], {}, frozenset()))
        self.form.set_versions([])
        self.evaluation.set_run(None)
        self.banner.hide()
        if session is not None:
            session.changed.connect(self._on_changed)
            session.jobEnded.connect(self._on_job_ended)
            session.jobsUpdated.connect(self._on_jobs_updated)
            self._dirty_runs = self._dirty_datasets = True
            self.refresh_if_needed()
        self._update_actions()

    def refresh_runs(self) -> None:
        """Read the runs table now."""
        if self.session is not None:
            self._dirty_runs = False
            ops.load_runs(self.session, self.show_archived.isChecked(), self._on_runs, self)

    def _catch_up(self, session: ProjectSession) -> None:
        if self._dirty_datasets:
            self._dirty_datasets = False
            ops.load_datasets(session, self.form.set_versions, self)
        if self._dirty_runs:
            self.refresh_runs()
        self.poller.poll()

    def _on_changed(self, changes: Changes) -> None:
        self._dirty_datasets |= changes.datasets
        self._dirty_runs |= changes.runs or changes.models
        self.refresh_if_needed()

    def _on_jobs_updated(self, jobs: list[Job]) -> None:
        # Runs started elsewhere (the command line, a script, another window).
        known = {r.id for r in self.table.runs.runs}
        runs = {j.args.get("run_id") for j in jobs if j.kind in TRAINING_JOB_KINDS}
        if runs - known - {None}:
            self._dirty_runs = True
            self.refresh_if_needed()

    def _on_runs(self, snapshot: RunsSnapshot) -> None:
        before = {r.id for r in self.table.runs.runs}
        self.table.runs.set_snapshot(snapshot)
        self.poller.forget(before - {r.id for r in snapshot.runs})
        self.poller.set_active(self.table.runs.active_ids())
        select, self._select_ids = self._select_ids, None
        if select is not None:
            self.table.select_ids(select)
        elif not self.table.selected_ids() and snapshot.runs:
            self.table.select_ids([snapshot.runs[0].id])
        self._show_current()
        self._update_timer()

    def _on_selection(self, run_ids: list[int]) -> None:
        self.poller.show_runs(run_ids)
        self._show_current()

    def _on_polled(self, updates: list[RunUpdate]) -> None:
        ended = False
        for update in updates:
            changed = self.table.runs.update_run(update.run, update.stale)
            ended |= changed and not fmt.is_active(update.run)
        self.table.runs.tick()
        self.poller.set_active(self.table.runs.active_ids())
        if ended:
            self.refresh_runs()  # its model version and evaluation are in now
        self._show_current()
        self._update_timer()

    def _update_timer(self) -> None:
        self.poller.set_running(self.isVisible() and bool(self.table.runs.active_ids()))

    # -- the selected run --------------------------------------------------------------

    def current_run(self) -> Run | None:
        """The focused run among the selected ones (the first selected otherwise)."""
        ids = self.table.selected_ids()
        index = self.table.currentIndex()
        if index.isValid():
            run = self.table.proxy.index(index.row(), 0).data(Qt.ItemDataRole.UserRole)
            if run is not None and run.id in ids:
                return run
        return self.table.runs.run(ids[0]) if ids else None

    def _show_current(self) -> None:
        run = self.current_run()
        model = self.table.runs.models.get(run.id) if run else None
        if run is not self.evaluation.run:
            self.evaluation.set_run(run, model)
        self.explain.set_model(self.session, model.ref if model is not None else None)
        self._update_actions()

    def _explain_cell(self, true: str, predicted: str) -> None:
        """A confusion-matrix cell: list its test rows on the Explain page."""
        self.explain.show_cell((true, predicted))
        self.views.setCurrentWidget(self.explain)

    def _update_actions(self) -> None:
        runs = [r for i in self.table.selected_ids() if (r := self.table.runs.run(i))]
        current = self.current_run()
        model = self.table.runs.models.get(current.id) if current else None
        self.actions_.update(runs, current, self.table.runs.stale, model)
        ready = self.session is not None and self.form.selected_version() is not None
        self.actions_.train.setEnabled(ready and not self._submitting)

    # -- actions -----------------------------------------------------------------------

    def train(self) -> None:
        """Queue a run from the form and start its worker; refusals show under the form."""
        version = self.form.selected_version()
        if self.session is None or version is None or self._submitting:
            return
        try:
            config = self.form.config()
        except FormError as exc:
            self.form.show_error(str(exc))
            return
        self._submitting = True
        self._update_actions()
        ops.start_training(self.session, version.ref, config, self._on_queued, self._on_refused)

    def _on_queued(self, run: Run) -> None:
        self._submitting = False
        self._select_ids = [run.id]
        self.form.show_error("")
        self.views.setCurrentWidget(self.charts)
        self._update_actions()

    def _on_refused(self, exc: BaseException) -> None:
        self._submitting = False
        self.form.show_error(str(exc))
        match = re.match(r"--([a-z\-]+)", str(exc))
        field = match and _FLAG_FIELDS.get(match.group(1), match.group(1).replace("-", "_"))
        widget = getattr(self.form, field, None) if field else None
        if isinstance(widget, QWidget):
            widget.setFocus()
        self._update_actions()

    def _control(self, request: str) -> None:
        run = self.current_run()
        if self.session is not None and run is not None:
            ops.control_run(self.session, run.id, request, self._show_error)

    def resume_selected(self) -> None:
        """Continue the focused run (paused in its worker, else from its checkpoint)."""
        run = self.current_run()
        if self.session is not None and run is not None:
            self._select_ids = [run.id]
            ops.resume_run(self.session, run, run.id in self.table.runs.stale, self._show_error)

    def archive_selected(self) -> None:
        """Archive the selected runs (or unarchive them when all are archived)."""
        runs = [r for i in self.table.selected_ids() if (r := self.table.runs.run(i))]
        archived, stale = not all(r.archived for r in runs), self.table.runs.stale
        for run in runs:
            ops.archive_run(
                self.session,  # type: ignore[arg-type]
                run.id,
                archived,
                run.id in stale,
                self._show_error,
            )

    def delete_selected(self) -> None:
        """Ask, then delete the selected runs with everything they own."""
        ids = self.table.selected_ids()
        if self.session is None or not ids:
            return
        session, stale = self.session, set(self.table.runs.stale)
        names = ", ".join(str(i) for i in ids)
        text = (
            f"Delete run(s) {names} with their metrics, checkpoints and model versions? "
            "This cannot be undone."
        )
        ask(
            self,
            "Delete Runs",
            text,
            "Delete",
            lambda: [ops.delete_run(session, i, i in stale, self._show_error) for i in ids],
        )

    def set_champion(self) -> None:
        """Point the model's ``champion`` alias at the focused run's version."""
        run = self.current_run()
        model = self.table.runs.models.get(run.id) if run else None
        if self.session is not None and model is not None:
            ops.set_champion(self.session, model.ref, self._show_error)

    def _show_error(self, exc: BaseException) -> None:
        self.banner.show_message(str(exc), "error")

    # -- ends of runs ----------------------------------------------------------------

    def _on_job_ended(self, job: Job) -> None:
        session = self.session
        if session is None or job.kind not in TRAINING_JOB_KINDS or "run_id" not in job.args:
            return
        ops.load_run(session, int(job.args["run_id"]), self._notify, self)
        if session.jobs.owns(job.id):
            forget_job(session, job.id)

    def _notify(self, run: Run) -> None:
        ok = run.status == "finished"
        self.notifier.notify(f"Run {run.id} {run.status}", fmt.outcome_text(run), ok)
