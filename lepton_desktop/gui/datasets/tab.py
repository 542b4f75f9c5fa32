"""The Datasets tab: the dataset tree, the selected version, import/prepare/delete.

Slots only gather input and call one op (``datasets/ops.py``; jobs: ``gui/ops.py``).
The tab refreshes when ``session.changed`` says datasets changed and it is visible;
hidden, it marks itself dirty and refreshes when shown (Anki's ``refresh_if_needed``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence, QShowEvent
from PySide6.QtWidgets import QSplitter, QToolBar, QVBoxLayout, QWidget

from lepton_desktop.core.entities import DatasetVersion, Job
from lepton_desktop.gui.datasets import ops
from lepton_desktop.gui.datasets.import_dialog import ImportDialog
from lepton_desktop.gui.datasets.tree import DatasetTree
from lepton_desktop.gui.datasets.view import DatasetView
from lepton_desktop.gui.dialogs import ask
from lepton_desktop.gui.ops import cancel_job, forget_job
from lepton_desktop.gui.session import DATASET_JOB_KINDS, Changes, ProjectSession, describe_job
from lepton_desktop.gui.widgets.banner import MessageBanner
from lepton_desktop.gui.widgets.job_widgets import JobPanel

if TYPE_CHECKING:
    from lepton_desktop.gui.datasets.prep_dialog import PrepDialog

_SUCCESS_MS = 10_000


class DatasetsTab(QWidget):
    """Datasets and their versions, and the jobs that make them.

    Args:
        parent: the parent widget.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session: ProjectSession | None = None
        self.versions: list[DatasetVersion] = []
        self._dirty = False
        self._select_id: int | None = None
        self._build_actions()
        self.job_panel = JobPanel(DATASET_JOB_KINDS, self)
        self.job_panel.cancelRequested.connect(self._on_cancel_requested)
        self.banner = MessageBanner(self)
        self.tree = DatasetTree(self)
        self.tree.versionSelected.connect(self._on_version_selected)
        self.view = DatasetView(self)
        self._banner_timer = QTimer(self, singleShot=True, timeout=self._hide_success)
        self._build_layout()
        self._update_actions()

    def _build_actions(self) -> None:
        self.import_action = _action(self, "&Import…", "Ctrl+I",
                                     "Import a CSV, Parquet or .npz file, or an image folder")
        self.import_action.triggered.connect(lambda: self.open_import_dialog())
        self.prep_action = _action(self, "&Prepare…", "Ctrl+P",
                                   "Dedupe, fill, scale, one-hot encode or split the selected "
                                   "version into a new version")
        self.prep_action.triggered.connect(lambda: self.open_prep_dialog())
        self.delete_action = _action(self, "&Delete Dataset…", QKeySequence.StandardKey.Delete,
                                     "Delete the selected dataset with all its versions")
        self.delete_action.triggered.connect(self.delete_selected)
        self.refresh_action = _action(self, "&Refresh", QKeySequence.StandardKey.Refresh,
                                      "Read the dataset list again")
        self.refresh_action.triggered.connect(self.refresh)

    def _build_layout(self) -> None:
        toolbar = QToolBar(self)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        for action in self.actions():
            toolbar.addAction(action)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self.tree)
        splitter.addWidget(self.view)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([260, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 6)
        layout.addWidget(toolbar)
        layout.addWidget(self.job_panel)
        layout.addWidget(self.banner)
        layout.addWidget(splitter, 1)

    # -- session -------------------------------------------------------------------------

    def set_session(self, session: ProjectSession | None) -> None:
        """Show ``session``'s datasets (None: nothing is open)."""
        self.session = session
        self.versions = []
        self.tree.set_versions([])
        self.view.set_version(None, None)
        self.banner.hide()
        self.job_panel.update_jobs([])
        if session is not None:
            session.changed.connect(self._on_changed)
            session.jobsUpdated.connect(self.job_panel.update_jobs)
            session.jobEnded.connect(self._on_job_ended)
            self._dirty = True
            self.refresh_if_needed()
        self._update_actions()

    def refresh(self) -> None:
        """Read the dataset list now."""
        if self.session is not None:
            self._dirty = False
            ops.load_datasets(self.session, self._on_datasets, owner=self)

    def refresh_if_needed(self) -> None:
        """Refresh if something changed while the tab was hidden."""
        if self._dirty and self.isVisible():
            self.refresh()

    def showEvent(self, event: QShowEvent) -> None:
        """Catch up on changes made while hidden."""
        super().showEvent(event)
        self.refresh_if_needed()

    def _on_changed(self, changes: Changes) -> None:
        if changes.datasets:
            self._dirty = True
            self.refresh_if_needed()

    def _on_datasets(self, versions: list[DatasetVersion]) -> None:
        self.versions = versions
        select, self._select_id = self._select_id, None
        self.tree.set_versions(versions, select_id=select)
        self._update_actions()

    def _on_version_selected(self, version: DatasetVersion | None) -> None:
        parent_id = version.parent_id if version else None
        parent = next((v.ref for v in self.versions if v.id == parent_id), None)
        self.view.set_version(self.session, version, parent)
        self._update_actions()

    def _update_actions(self) -> None:
        is_open = self.session is not None
        selected = self.tree.selected_version() is not None
        self.import_action.setEnabled(is_open)
        self.prep_action.setEnabled(is_open and selected)
        self.delete_action.setEnabled(is_open and selected)
        self.refresh_action.setEnabled(is_open)

    # -- actions -----------------------------------------------------------------------------

    def open_import_dialog(self, source: Path | None = None) -> ImportDialog | None:
        """Open the Import dialog (prefilled with ``source``); the job starts on OK."""
        if self.session is None:
            return None
        names = {v.name for v in self.versions}
        dialog = ImportDialog(self.session, names, self)
        dialog.accepted.connect(lambda: self._start_import(dialog))
        if source is not None:
            dialog.set_source(source)
        dialog.open()
        return dialog

    def _start_import(self, dialog: ImportDialog) -> None:
        args = dialog.job_args()
        label = f"Importing {args['name']}"  # refused before a job exists: say it as one would

        def refused(exc: BaseException) -> None:
            self._show_error(RuntimeError(f"{label} failed: {exc}"))

        ops.start_import(self.session, args, refused)  # type: ignore[arg-type]

    def open_prep_dialog(self) -> PrepDialog | None:
        """Open the Prepare dialog for the selected version; the job starts on OK."""
        from lepton_desktop.gui.datasets.prep_dialog import PrepDialog  # pandas: load on use

        version = self.tree.selected_version()
        if self.session is None or version is None:
            return None
        dialog = PrepDialog(self.session, version, self)
        dialog.accepted.connect(lambda: self._start_prep(dialog))
        dialog.open()
        return dialog

    def _start_prep(self, dialog: PrepDialog) -> None:
        ops.start_prep(self.session, dialog.version.ref, dialog.options(),  # type: ignore[arg-type]
                       self._show_error)

    def delete_selected(self) -> None:
        """Ask, then delete the selected dataset with every version."""
        version = self.tree.selected_version()
        if self.session is None or version is None:
            return
        count = sum(1 for v in self.versions if v.name == version.name)
        text = (f"Delete the dataset “{version.name}” and its {count} version(s)? "
                "This cannot be undone.")
        session, name = self.session, version.name
        ask(self, "Delete Dataset", text, "Delete",
            lambda: ops.delete_dataset(session, name, self._show_error))

    def _on_cancel_requested(self, job_id: int) -> None:
        if self.session is not None:
            cancel_job(self.session, job_id)

    # -- job outcomes ----------------------------------------------------------------------

    def _on_job_ended(self, job: Job) -> None:
        session = self.session
        if session is None or job.kind not in DATASET_JOB_KINDS or not session.jobs.owns(job.id):
            return
        if job.status == "succeeded":
            self._show_success(job)
            return
        self._banner_timer.stop()
        if job.status == "cancelled" and session.jobs.cancel_requested(job.id):
            self.banner.show_message(f"{describe_job(job)}: cancelled; nothing was kept.", "info")
        else:
            self.banner.show_message(f"{describe_job(job)} failed: {_failure(job, session)}",
                                     "error")
        forget_job(session, job.id)

    def _show_success(self, job: Job) -> None:
        result = job.result or {}
        self._select_id = result.get("version_id")
        summary = (f"{describe_job(job)} finished: {result.get('dataset', '')}, "
                   f"{result.get('rows', 0):,} rows.")
        warnings = result.get("warnings") or []
        if warnings:  # stays until dismissed: it asks the user to look at the data
            self._banner_timer.stop()
            notes = "\n".join(f"Warning: {w}" for w in warnings)
            self.banner.show_message(f"{summary}\n{notes}", "info")
            return
        self.banner.show_message(summary, "success")
        self._banner_timer.start(_SUCCESS_MS)

    def _hide_success(self) -> None:
        if self.banner.level == "success":
            self.banner.hide()

    def _show_error(self, exc: BaseException) -> None:
        self._banner_timer.stop()
        self.banner.show_message(str(exc), "error")


def _failure(job: Job, session: ProjectSession) -> str:
    """What went wrong: the job's recorded error, else the worker's last output line."""
    if job.error and job.status != "cancelled":
        return job.error
    lines = session.jobs.output(job.id).strip().splitlines()
    return lines[-1] if lines else f"the job ended as {job.status}"


def _action(
    parent: QWidget, text: str, shortcut: str | QKeySequence.StandardKey, tip: str
) -> QAction:
    action = QAction(text, parent)
    action.setShortcut(QKeySequence(shortcut))
    action.setToolTip(f"{tip} ({QKeySequence(shortcut).toString()})")
    action.setStatusTip(tip)
    parent.addAction(action)
    return action
