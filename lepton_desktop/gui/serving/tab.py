"""The Serving tab: start and stop the local server, watch its requests, promote models.

Modelled on LM Studio's server panel: the settings and the big Start/Stop button on
the left; counters, charts and the live request log in the middle (with a picker of
the deployments, so earlier servers' requests stay reachable, and a full-text search
of the log); what the server loaded, example client code and exports on the right.
The server runs in a ``serve`` worker process; everything shown comes from polling the
project file (the deployment rows and the request log, incrementally). The tab never
calls the server.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop.core.entities import Deployment, Job, ModelVersion, RequestRecord
from lepton_desktop.gui.dialogs import ask
from lepton_desktop.gui.ops import forget_job
from lepton_desktop.gui.serving import ops
from lepton_desktop.gui.serving.charts import ServingCharts
from lepton_desktop.gui.serving.explain_dialog import ExplainDialog, explainable
from lepton_desktop.gui.serving.export_dialog import ExportDialog
from lepton_desktop.gui.serving.forget_dialog import ForgetRequestsDialog, result_text
from lepton_desktop.gui.serving.log_panel import RequestLogPanel
from lepton_desktop.gui.serving.model_lists import LoadedModels, ModelPicker
from lepton_desktop.gui.serving.ops import PersonalData, ServingUpdate
from lepton_desktop.gui.serving.personal_data import PersonalDataBox, confirmation_text
from lepton_desktop.gui.serving.poller import ServingPoller
from lepton_desktop.gui.serving.request_log import RequestDetail
from lepton_desktop.gui.serving.server_panel import OptionsError, ServerPanel
from lepton_desktop.gui.serving.snippets import SnippetView
from lepton_desktop.gui.session import Changes, ProjectSession
from lepton_desktop.gui.widgets.actions import make_action
from lepton_desktop.gui.widgets.banner import MessageBanner
from lepton_desktop.gui.widgets.notifier import Notifier
from lepton_desktop.gui.widgets.visible_poller import VisiblePollingTab

#: How long Stop waits to see the server stopped before the button comes back.
STOP_TIMEOUT_MS = 20_000


class ServingTab(VisiblePollingTab):
    """Serve the project's models over HTTP and watch the traffic.

    Args:
        parent: the parent widget.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session: ProjectSession | None = None
        self.deployment: Deployment | None = None  # the server's
        self.viewed: Deployment | None = None  # the one whose log is shown
        self.versions: list[ModelVersion] = []
        self.total = self.errors = 0
        self._busy = False  # Start was pressed (until the deployment exists), or Stop
        self._stopping = False  # Stop was pressed (until the server is seen stopped)
        self._dirty_models = False
        self._exports: dict[int, str] = {}  # export job id -> what it writes
        self.panel = ServerPanel(self)
        self.picker = ModelPicker(self)
        self.personal = PersonalDataBox(self)
        self.loaded = LoadedModels(self)
        self.snippets = SnippetView(self)
        self.charts = ServingCharts(self)
        self.requests = RequestLogPanel(self)
        self.log = self.requests.log  # the live log
        self.detail = RequestDetail(self)
        self.explain_button = QPushButton("Explain…", self)
        self.explain_button.setToolTip("Why the model answered this request (its captured inputs)")
        self.explain_button.setEnabled(False)
        self.explained: RequestRecord | None = None  # the request the button explains
        self.banner = MessageBanner(self)
        self.counters = QLabel(self)
        self.counters.setObjectName("servingCounters")
        self.export_button = QPushButton("Export served model…", self)
        self.forget_button = QPushButton("Forget this request…", self)
        self.forget_button.setToolTip(
            "Clear what the server captured of the selected request (inputs and outputs) "
            "and delete its feedback; its line (time, status, latency) stays counted"
        )
        self.forget_button.setEnabled(False)
        self.forget_range_button = QPushButton("Forget requests…", self)
        self.forget_range_button.setToolTip(
            "Clear what the server captured of every request in a time range (of one "
            "model, or all) and delete their feedback"
        )
        self.forget_range_button.setEnabled(False)
        self.poller = ServingPoller(self)
        self.notifier = Notifier(self)
        self.toggle_action = make_action(
            self, "Start/Stop Server", "Start the server, or stop it", "Ctrl+Shift+S"
        )
        self._build_layout()
        self._connect()
        self._show_counters()

    # -- building -------------------------------------------------------------------------

    def _build_layout(self) -> None:
        left = QWidget(self)
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 6, 0)
        column.addWidget(self.panel)
        column.addWidget(self.picker, 1)
        column.addWidget(self.personal)
        scroll = QScrollArea(self)
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(320)
        log_split = QSplitter(Qt.Orientation.Vertical, self)
        log_split.addWidget(self.requests)
        detail = QWidget(self)
        detail_column = QVBoxLayout(detail)
        detail_column.setContentsMargins(0, 0, 0, 0)
        detail_column.addWidget(self.detail, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.explain_button)
        buttons.addStretch(1)
        buttons.addWidget(self.forget_range_button)
        buttons.addWidget(self.forget_button)
        detail_column.addLayout(buttons)
        log_split.addWidget(detail)
        log_split.setSizes([380, 170])
        middle = QWidget(self)
        center = QVBoxLayout(middle)
        center.setContentsMargins(0, 0, 0, 0)
        center.addWidget(self.banner)
        center.addWidget(self.counters)
        center.addWidget(self.charts)
        center.addWidget(log_split, 1)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(scroll)
        split.addWidget(middle)
        split.addWidget(self._right_column())
        split.setStretchFactor(1, 1)
        split.setSizes([330, 640, 340])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 6)
        layout.addWidget(split)

    def _right_column(self) -> QWidget:
        loaded_box = QGroupBox("Loaded models", self)
        QVBoxLayout(loaded_box).addWidget(self.loaded)
        snippet_box = QGroupBox("Use it", self)
        QVBoxLayout(snippet_box).addWidget(self.snippets)
        right = QSplitter(Qt.Orientation.Vertical, self)
        right.addWidget(loaded_box)
        right.addWidget(snippet_box)
        right.setSizes([210, 380])
        box = QWidget(self)
        column = QVBoxLayout(box)
        column.setContentsMargins(6, 0, 0, 0)
        column.addWidget(right, 1)
        column.addWidget(self.export_button)
        return box

    def _connect(self) -> None:
        self.panel.toggleRequested.connect(self.toggle_server)
        self.toggle_action.triggered.connect(self.toggle_server)
        self.panel.tokenRequested.connect(self._request_token)
        self.poller.deploymentChanged.connect(self._on_deployment_changed)
        self.poller.updated.connect(self._on_updated)
        self.requests.requestActivated.connect(self._on_request_activated)
        self.explain_button.clicked.connect(self.explain_request)
        self.requests.picked.connect(self._on_deployment_picked)
        self.loaded.promoteRequested.connect(self.promote)
        self.loaded.rollbackRequested.connect(self.roll_back)
        self.snippets.modelChanged.connect(self._load_sample)
        self.export_button.clicked.connect(self.open_export_dialog)
        self.forget_button.clicked.connect(self.forget_selected_request)
        self.forget_range_button.clicked.connect(self.open_forget_dialog)
        self.personal.captureRequested.connect(self.set_capture_pii)

    # -- session and refreshing ------------------------------------------------------------

    def set_session(self, session: ProjectSession | None) -> None:
        """Show ``session``'s server (None: nothing is open)."""
        self.session = session
        self._busy = self._stopping = False
        self._exports.clear()
        self.banner.hide()
        self.poller.set_session(session)
        self.requests.set_session(session)
        self.picker.set_versions([])
        self.versions = []
        if session is not None:
            session.changed.connect(self._on_changed)
            session.jobEnded.connect(self._on_job_ended)
            self._dirty_models = True
            self.refresh_if_needed()
        self._update_enabled()

    def _catch_up(self, session: ProjectSession) -> None:
        if self._dirty_models:
            self._dirty_models = False
            ops.load_models(session, self._on_models, self)
            ops.load_personal_data(session, self.personal.set_models, self)
        self.poller.poll()

    def _update_timer(self) -> None:
        # The server may be started from the command line at any time, so the tab polls
        # whenever it is shown (the log is caught up when shown again).
        self.poller.set_running(self.isVisible())

    def _on_changed(self, changes: Changes) -> None:
        if changes.models:
            self._dirty_models = True
            self.refresh_if_needed()

    def _on_models(self, versions: list[ModelVersion]) -> None:
        self.versions = versions
        self.picker.set_versions(versions)
        self.loaded.set_registry(versions)
        self._show_snippet_models()
        self._update_enabled()

    # -- polling ---------------------------------------------------------------------------

    def _on_deployment_changed(self, deployment: Deployment | None) -> None:
        self.viewed = deployment
        self.requests.show_deployment(deployment)
        self.charts.clear()
        self.detail.show_record(None)
        self._set_explained(None)
        self.forget_button.setEnabled(False)
        self.total = self.errors = 0

    def _on_updated(self, update: ServingUpdate) -> None:
        self.deployment = update.deployment
        self.viewed = update.viewed
        self.requests.on_poll(update.viewed, update.records, update.deployments)
        self.charts.add(update.records)
        self.errors += sum(1 for r in update.records if r.status >= 400)
        self.total = update.total
        self.panel.show_deployment(update.deployment, update.job_error)
        self.personal.set_server(update.deployment)
        if self._stopping and not self.panel.running:
            self._stopping = self._busy = False
        elif self._stopping:
            self.panel.status.setText("Stopping…")
        running = self.panel.running
        self.loaded.set_loaded(update.deployment.loaded if running and update.deployment else [])
        self._show_snippet_models()
        self.snippets.set_target(
            self.panel.url.text(),
            self.panel.token.text() if self.deployment and self.deployment.token else None,
        )
        viewed = self.viewed
        self.charts.redraw(self._chart_end(), viewed.started_at if viewed else None)
        self._show_counters()
        self._update_enabled()

    def _chart_end(self) -> float:
        """Where the charts end: now for a live server; for one that stopped, when it
        stopped (its last minutes, not an empty window of today)."""
        viewed = self.viewed
        if viewed is None or viewed.active:
            return time.time()
        if viewed.stopped_at is not None:
            return viewed.stopped_at
        seen = self.charts.stats.ts
        return float(seen[-1]) if len(seen) else time.time()

    def _show_counters(self) -> None:
        totals = f"<b>{self.total:,}</b> requests &nbsp;·&nbsp; <b>{self.errors:,}</b> errors"
        if self.viewed is not None and not self.viewed.active:
            self.counters.setText(f"{totals} &nbsp;·&nbsp; server {self.viewed.status}")
            return
        rate, p50 = self.charts.stats.recent(time.time())
        latency = f"{p50:.1f} ms" if p50 is not None else "—"
        self.counters.setText(
            f"{totals} &nbsp;·&nbsp; {rate:.1f} req/s now &nbsp;·&nbsp; p50 {latency}"
        )

    def _update_enabled(self) -> None:
        has_models = bool(self.versions)
        can_toggle = self.session is not None and not self._busy
        self.panel.toggle.setEnabled(can_toggle and (has_models or self.panel.running))
        self.toggle_action.setEnabled(self.panel.toggle.isEnabled())
        self.picker.setEnabled(not self.panel.running)
        self.export_button.setEnabled(self.session is not None and has_models)
        self.forget_range_button.setEnabled(self.session is not None)
        if not has_models and self.session is not None and not self.panel.running:
            self.panel.status.setText("No model to serve yet: train one in the Training tab.")

    # -- start and stop ----------------------------------------------------------------------

    def toggle_server(self) -> None:
        """Start the server with the settings shown, or stop the running one."""
        if self.session is None or self._busy:
            return
        if self.panel.running and self.deployment is not None:
            self.stop_server()
        else:
            self.start_server()

    def start_server(self) -> None:
        """Queue a deployment with the panel's settings and start its worker."""
        try:
            options = self.panel.options(self.picker.selected())
        except OptionsError as exc:
            self.panel.show_error(str(exc))
            return
        self.panel.show_error("")
        self._busy = True
        self._update_enabled()
        ops.start_server(self.session, options, self._on_started, self._on_refused)  # type: ignore[arg-type]

    def stop_server(self) -> None:
        """Stop the running server (its worker shuts down gracefully)."""
        if self.session is None or self.deployment is None:
            return
        self._busy = self._stopping = True
        self.panel.status.setText("Stopping…")
        self._update_enabled()
        # This window's worker is terminated, then killed, if it does not stop by itself;
        # the button comes back anyway should the row never say so (a server started
        # from the command line that no longer answers its cancel flag, say).
        QTimer.singleShot(STOP_TIMEOUT_MS, self, self._stop_timed_out)
        ops.stop_server(self.session, self.deployment, self._on_refused)

    def _stop_timed_out(self) -> None:
        if self._stopping:
            self._stopping = self._busy = False
            self._update_enabled()

    def _on_started(self, deployment: Deployment) -> None:
        self._busy = False
        self.panel.show_deployment(deployment)
        self._update_enabled()
        self.poller.view(None)  # the new server's log, whatever was picked before

    def _on_refused(self, exc: BaseException) -> None:
        self._busy = self._stopping = False
        self.panel.show_error(str(exc))
        self._update_enabled()

    def _request_token(self) -> None:
        if self.session is not None:
            ops.new_token(self.session, self.panel.set_token, self)

    # -- models ------------------------------------------------------------------------------

    def promote(self, ref: str) -> None:
        """Make ``ref`` its model's champion (the running server follows)."""
        if self.session is not None:
            ops.set_alias(self.session, ref, self._on_promoted, self._show_error)

    def roll_back(self, name: str) -> None:
        """Move ``name``'s champion back to the version before it."""
        target = ops.rollback_target(self.versions, name)
        if self.session is not None and target is not None:
            ops.set_alias(self.session, target.ref, self._on_promoted, self._show_error)

    def _on_promoted(self, version: ModelVersion) -> None:
        self.notifier.notify("Champion", f"{version.ref} is now {version.name}'s champion")
        self.poller.poll()

    def _show_snippet_models(self) -> None:
        if self.panel.running and self.loaded.loaded:
            names = sorted({str(e["name"]) for e in self.loaded.loaded})
        else:
            names = sorted({v.name for v in self.versions})
        self.snippets.set_models(names)

    def _load_sample(self, name: str) -> None:
        if self.session is not None:
            ops.load_snippet_sample(self.session, name, self.snippets.set_sample, self)

    # -- the request log ---------------------------------------------------------------------

    def _on_deployment_picked(self, deployment_id: int) -> None:
        # The server's own deployment: follow the server (and the next one started).
        following = self.deployment is not None and deployment_id == self.deployment.id
        self.poller.view(None if following else deployment_id)

    def _on_request_activated(self, record: RequestRecord) -> None:
        self._set_explained(None)
        self.detail.show_record(record, loading=self.session is not None)
        self.forget_button.setEnabled(self.session is not None)
        if self.session is not None:
            ops.load_request(self.session, record.request_id, self._on_request_loaded, self)

    def _on_request_loaded(self, record: RequestRecord | None) -> None:
        if record is not None and record.request_id == self.detail.request_id:
            self.detail.show_record(record)
            self._set_explained(record)

    def _set_explained(self, record: RequestRecord | None) -> None:
        why_not = explainable(record)
        self.explained = record if why_not is None else None
        self.explain_button.setEnabled(why_not is None)
        self.explain_button.setToolTip(why_not or "Why the model answered this request")

    def explain_request(self) -> ExplainDialog | None:
        """Open the explanation of the request shown in the detail (its captured inputs)."""
        if self.session is None or self.explained is None:
            return None
        dialog = ExplainDialog(self.session, self.explained, self)
        dialog.show()
        return dialog

    def forget_selected_request(self) -> None:
        """Ask, then forget the request shown in the detail (``lepton-desktop forget``)."""
        request_id = self.detail.request_id
        if self.session is None or request_id is None:
            return
        ask(self, "Forget Request",
            f"Clear the inputs and outputs captured for request {request_id} and delete "
            "the labels sent back for it? This cannot be undone; the request stays "
            "counted (time, status, latency).",
            "Forget", lambda: self._forget(request_id))  # fmt: skip

    def _forget(self, request_id: str) -> None:
        if self.session is None:
            return

        def forgotten(result: dict[str, int]) -> None:
            self.banner.show_message(
                f"Request {request_id} forgotten: its captured inputs and outputs are gone "
                f"from the project file, with {result['feedback_deleted']} feedback label(s).",
                "success",
            )
            if self.session is not None and self.detail.request_id == request_id:
                ops.load_request(self.session, request_id, self._on_request_loaded, self)

        ops.forget_request(self.session, request_id, forgotten, self._on_forget_failed)

    def _on_forget_failed(self, exc: BaseException) -> None:
        self.banner.show_message(f"Forgetting the request failed: {exc}", "error")

    def open_forget_dialog(self) -> ForgetRequestsDialog | None:
        """Ask for a time range (and a model) and forget its requests."""
        if self.session is None:
            return None
        dialog = ForgetRequestsDialog(self.session, self)
        dialog.forgotten.connect(self._on_range_forgotten)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def _on_range_forgotten(self, result: dict[str, int]) -> None:
        self.banner.show_message(result_text(result), "success")
        request_id = self.detail.request_id
        if self.session is not None and request_id is not None:
            ops.load_request(self.session, request_id, self._on_request_loaded, self)

    # -- personal data -----------------------------------------------------------------------

    def set_capture_pii(self, model: str, capture: bool) -> None:
        """Store whether ``model``'s request log keeps personal data (asked first when on)."""
        data = self.personal.models.get(model)
        if self.session is None or data is None:
            return
        if capture:
            ask(self, "Capture Personal Data", confirmation_text(data), "Capture",
                lambda: self._store_capture(data, True))  # fmt: skip
        else:
            self._store_capture(data, False)

    def _store_capture(self, data: PersonalData, capture: bool) -> None:
        if self.session is None:
            return
        session = self.session

        def stored(_: None) -> None:
            ops.load_personal_data(session, self.personal.set_models, self)

        ops.set_capture_pii(session, data.model, capture, stored, self._show_error)

    # -- export ------------------------------------------------------------------------------

    def open_export_dialog(self) -> ExportDialog | None:
        """Ask for a model version, a format and a path; the export runs in a worker."""
        if self.session is None:
            return None
        served = [f"{e['name']}:{e['version']}" for e in self.loaded.loaded]
        current = self.loaded.current_ref()
        newest_first = [v.ref for v in reversed(self.versions)]
        refs = ([current] if current else []) + served + newest_first
        refs = list(dict.fromkeys(refs))
        dialog = ExportDialog(refs, Path(self.session.path).parent, self)
        dialog.exportRequested.connect(self.export)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def export(self, ref: str, fmt: str, out: str) -> None:
        """Run an ``export`` job of ``ref`` (progress shows in the status bar)."""
        if self.session is None:
            return
        what = f"{ref} to {out}"
        ops.start_export(
            self.session,
            ref,
            fmt,
            out,
            lambda job_id: self._exports.__setitem__(job_id, what),
            self._show_error,
        )

    def _on_job_ended(self, job: Job) -> None:
        if job.kind == "serve":
            self.poller.poll()
        if job.kind != "export" or job.id not in self._exports or self.session is None:
            return
        what = self._exports.pop(job.id)
        if job.status == "succeeded":
            self.notifier.notify("Export finished", f"Exported {what}")
            self.banner.show_message(f"Exported {what}", "success")
        else:
            detail = job.error or self.session.jobs.output(job.id).strip() or job.status
            self.banner.show_message(f"Export of {what} failed: {detail}", "error")
        forget_job(self.session, job.id)

    def _show_error(self, exc: BaseException) -> None:
        self.banner.show_message(str(exc), "error")
