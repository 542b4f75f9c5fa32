"""The Monitoring tab: how each served model is doing, over a window, from the project file.

A model (or all of them) and a window (the last 15 minutes ... everything, or a range
dragged on a chart) are chosen at the top; below them, the window's totals as cards
(requests, errors, latency percentiles, rows, live quality, anomalies), four charts
over time (latency and error spikes marked) and, beside them, the quality table (per
class, and the confusion matrix), the drift table of one model's features with the
histogram of the chosen one, training against served, the alerts, and the request log
filtered, paged, exported and replayed (the Requests page). Everything is read from the
request log's rollups and the feedback in the project file, so it shows servers that
ran while the window was closed, and keeps up while one runs: the tab re-reads every
:data:`REFRESH_MS` while shown, one read at a time on the session's DB thread.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop.core.entities import AlertEvent, Job
from lepton_desktop.core.monitoring.alerts import RuleSpec
from lepton_desktop.core.monitoring.labels import LabelImport
from lepton_desktop.core.monitoring.quality import MIN_LABELLED
from lepton_desktop.core.monitoring.requests import RequestFilter
from lepton_desktop.gui.dialogs import show_exception
from lepton_desktop.gui.monitoring import ops
from lepton_desktop.gui.monitoring.alerts_panel import AlertsPanel
from lepton_desktop.gui.monitoring.charts import MonitoringCharts
from lepton_desktop.gui.monitoring.drift_panel import DriftPanel
from lepton_desktop.gui.monitoring.ops import Choice, MonitoringView
from lepton_desktop.gui.monitoring.quality_chart import QualityChart
from lepton_desktop.gui.monitoring.requests_panel import PAGE_ROWS, RequestsPanel
from lepton_desktop.gui.monitoring.update_control import UpdateController
from lepton_desktop.gui.monitoring.update_panel import UpdatePanel
from lepton_desktop.gui.session import Changes, ProjectSession, describe_job
from lepton_desktop.gui.widgets.actions import make_action
from lepton_desktop.gui.widgets.charts import hide_until_drawn
from lepton_desktop.gui.widgets.notifier import Notifier
from lepton_desktop.gui.widgets.tick_poller import TickPoller
from lepton_desktop.gui.widgets.visible_poller import VisiblePollingTab

REFRESH_MS = 2000
#: Milliseconds between the steps of showing a read (see MonitoringTab.show_view): more
#: than the 5 ms Qt waits before it repaints a window after a change (a frame), so that
#: each step's repaint comes before the next step.
SHOW_STEP_MS = 20
WINDOWS = (("Last 15 minutes", "15m"), ("Last hour", "1h"), ("Last 24 hours", "24h"),
           ("Last 7 days", "7d"), ("Everything", "all"))  # fmt: skip
ALL_MODELS = "All models"
#: The quality tables' count: the window's labelled rows, or the newest N of them.
COUNT_WINDOWS = (("Labelled rows in the window", None), ("Last 100 labelled", 100),
                 ("Last 1,000 labelled", 1000), ("Last 10,000 labelled", 10_000))  # fmt: skip
CARDS = ("requests", "rate", "errors", "latency", "rows", "quality", "anomalies")
_CARD_TITLES = {"requests": "Requests", "rate": "Requests / s", "errors": "Errors",
                "latency": "Latency p50 · p95 · p99", "rows": "Rows predicted",
                "quality": "Live quality", "anomalies": "Anomalies"}  # fmt: skip


class MonitoringPoller(TickPoller):
    """Reads the tab's choice on the DB thread, one read at a time."""

    INTERVAL_MS = REFRESH_MS

    def __init__(self, tab: MonitoringTab, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.tab = tab

    def _ask(self, session: ProjectSession) -> None:
        self._pending = True
        ops.load_view(session, self.tab.choice, self._on_read, self._on_failed, self)

    def _on_read(self, view: MonitoringView) -> None:
        self._answered()
        self.tab.show_view(view)
        self._ask_again_if_wanted()

    def _on_failed(self, exc: BaseException) -> None:
        self._failed("monitoring", exc)


class MonitoringTab(VisiblePollingTab):
    """Traffic, latency, errors, predictions and live quality of the served models.

    Args:
        parent: the parent widget.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session: ProjectSession | None = None
        self.choice = Choice()
        self.view: MonitoringView | None = None
        self._showing = 0  # which read show_view is showing (a newer one stops an older)
        self.poller = MonitoringPoller(self, self)
        self.model_box = QComboBox(self)
        self.model_box.setMinimumContentsLength(18)
        self.model_box.setToolTip("The model (and version) to watch")
        self.window_box = QComboBox(self)
        for label, key in WINDOWS:
            self.window_box.addItem(label, key)
        self.window_box.setCurrentIndex(1)
        self.whole_button = QPushButton("Whole window", self)
        self.whole_button.setToolTip("Forget the range dragged on a chart")
        self.whole_button.setEnabled(False)
        self.updated = QLabel(self)
        self.empty = QLabel(
            "No requests logged yet. Start a server in the Serving tab (or with "
            "<code>lepton-desktop serve</code>): its traffic, latency and live quality "
            "show here, also after it stopped.", self)  # fmt: skip
        self.empty.setWordWrap(True)
        # Shown once a read finds nothing served: shown before the first read, hiding
        # it then would re-lay out (and repaint) the whole tab on a busy project.
        self.empty.setVisible(False)
        self.cards = {name: _Card(_CARD_TITLES[name], self) for name in CARDS}
        self.charts = MonitoringCharts(self)
        self.per_class = QTableWidget(0, 5, self)
        self.per_class.setHorizontalHeaderLabels(["Class", "Precision", "Recall", "F1", "Rows"])
        self.confusion = QTableWidget(0, 0, self)
        self.alerts = AlertsPanel(self)
        self.requests = RequestsPanel(self)
        self.update_page = UpdatePanel(self)
        self._request_jobs: set[int] = set()
        self.updates = UpdateController(
            self.update_page, lambda: self.session, self._request_jobs.add, self._refused, self
        )
        self.side_tabs = QTabWidget(self)
        self.notifier = Notifier(self)
        for table in (self.per_class, self.confusion):
            table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
            table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.per_class.verticalHeader().hide()
        self.drift = DriftPanel(self)
        self.import_button = QPushButton("Import labels…", self)
        self.import_button.setToolTip(
            "Labels that arrived later: a CSV of request_id,label (and row for requests of "
            "several rows). One bad line stores nothing."
        )
        self.import_result = QLabel(self)
        self.import_result.setWordWrap(True)
        self.quality_chart = QualityChart(self)
        hide_until_drawn(self.quality_chart)
        self.count_box = QComboBox(self)
        for label, count in COUNT_WINDOWS:
            self.count_box.addItem(label, count)
        self.count_box.setToolTip("The rows the quality tables count: the window's, or the "
                                  "newest labelled rows whenever they were answered")  # fmt: skip
        self.quality_note = QLabel(self)
        self._build()
        self._connect()

    # -- assembly ------------------------------------------------------------------------

    def _build(self) -> None:
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Model:", self))
        bar.addWidget(self.model_box)
        bar.addWidget(QLabel("Window:", self))
        bar.addWidget(self.window_box)
        bar.addWidget(self.whole_button)
        bar.addStretch(1)
        bar.addWidget(self.updated)
        cards = QHBoxLayout()
        for card in self.cards.values():
            cards.addWidget(card)
        quality = QGroupBox("Live quality by class (feedback labels)", self)
        quality.setFlat(True)
        grid = QGridLayout(quality)
        grid.addWidget(self.quality_chart, 0, 0)
        counted = QHBoxLayout()
        counted.addWidget(QLabel("Count:", self))
        counted.addWidget(self.count_box)
        counted.addWidget(self.quality_note, 1)
        grid.addLayout(counted, 1, 0)
        grid.addWidget(self.per_class, 2, 0)
        grid.addWidget(QLabel("Confusion matrix (rows: true, columns: predicted)", self), 3, 0)
        grid.addWidget(self.confusion, 4, 0)
        imports = QHBoxLayout()
        imports.addWidget(self.import_button)
        imports.addWidget(self.import_result, 1)
        grid.addLayout(imports, 5, 0)
        self.side_tabs.addTab(quality, "Live quality")
        self.side_tabs.addTab(self.drift, "Drift")
        self.side_tabs.addTab(self.alerts, "Alerts")
        self.side_tabs.addTab(self.requests, "Requests")
        self.side_tabs.addTab(self.update_page, "Model update")
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(self.charts)
        split.addWidget(self.side_tabs)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.empty)
        layout.addLayout(cards)
        layout.addWidget(split, 1)

    def _connect(self) -> None:
        self.model_box.activated.connect(self._on_model_chosen)
        self.window_box.activated.connect(self._on_window_chosen)
        self.whole_button.clicked.connect(self.reset_range)
        self.charts.rangeChosen.connect(self.choose_range)
        self.alerts.addRequested.connect(self._add_alert)
        self.alerts.removeRequested.connect(self._remove_alert)
        self.alerts.fired.connect(self._on_fired)
        self.import_button.clicked.connect(lambda: self.import_labels())
        self.count_box.activated.connect(
            lambda i: self._choose(last_labelled=self.count_box.itemData(i))
        )
        self.requests.pageRequested.connect(self._read_requests)
        self.requests.exportRequested.connect(
            lambda sel, out: self._requests_job("export", sel, out=out)
        )
        self.requests.replayRequested.connect(
            lambda sel, target: self._requests_job("replay", sel, target=target)
        )
        self.requests.retentionRequested.connect(self._set_retention)
        self.side_tabs.currentChanged.connect(lambda _i: self._requests_shown())
        self.side_tabs.currentChanged.connect(lambda _i: self._update_shown())
        self.refresh_action = make_action(self, "&Refresh", "Read the project again", "F5")
        self.refresh_action.triggered.connect(self.poller.poll)

    # -- session ---------------------------------------------------------------------

    def set_session(self, session: ProjectSession | None) -> None:
        """Watch ``session``'s project (None: nothing is open)."""
        self.session = session
        self.poller.session = session
        self.view = None
        self._showing += 1  # a read of the last project still being shown stops
        self.choice = Choice(since=self.choice.since)
        self.model_box.clear()
        self.alerts.reset()
        self.requests.forget()
        if session is not None:
            session.jobEnded.connect(self._on_job_ended)
            session.changed.connect(self._on_changed)
        self.refresh_if_needed()

    def _on_changed(self, changes: Changes) -> None:
        # Requests forgotten (in the Serving tab): their feedback went from live quality,
        # their captured inputs from the page's rows.
        if changes.requests:
            if self.requests.page is not None:
                self.requests.reread()
            self.refresh_if_needed()

    def _catch_up(self, session: ProjectSession) -> None:
        self.poller.poll()

    def _update_timer(self) -> None:
        self.poller.set_running(self.isVisible() and self.session is not None)

    # -- choices -----------------------------------------------------------------------

    def _on_model_chosen(self, index: int) -> None:
        model, version = self.model_box.itemData(index) or (None, None)
        self._choose(model=model, version=version)

    def _on_window_chosen(self, index: int) -> None:
        self._choose(since=self.window_box.itemData(index), range=None)

    def choose_range(self, since: float, until: float) -> None:
        """Show ``[since, until)`` (a range dragged on a chart)."""
        self._choose(range=(since, until))

    def reset_range(self) -> None:
        """Back to the named window."""
        self._choose(range=None)

    def _choose(self, **changes: Any) -> None:
        current = {"model": self.choice.model, "version": self.choice.version,
                   "since": self.choice.since, "range": self.choice.range,
                   "last_labelled": self.choice.last_labelled}  # fmt: skip
        self.choice = Choice(**{**current, **changes})
        self.whole_button.setEnabled(self.choice.range is not None)
        self.poller.poll()

    # -- showing -----------------------------------------------------------------------

    def show_view(self, view: MonitoringView) -> None:
        """Show one read (the poller calls this on the GUI thread).

        In steps, an event-loop turn apart: the cards, each of the four traffic charts,
        live quality, then drift, alerts and the rest. Each step's widgets are laid out
        and painted before the next one changes others, so no single turn repaints the
        whole tab (on a first read, together they blocked the GUI for 150 ms and more).
        :attr:`view` is set once the last step has run.
        """
        if view.choice != self.choice:
            self.poller.poll()  # the choice changed while reading: read it again
            return
        self._showing += 1
        charts = [lambda v, show=show: show(v.series) for show in self.charts.steps]
        steps = [self._show_cards, *charts, self._show_marks, self._show_quality,
                 self._show_rest]  # fmt: skip
        self._show_step(self._showing, view, steps)

    def _show_step(self, showing: int, view: MonitoringView, steps: list[Any]) -> None:
        if showing != self._showing:
            return  # a newer read (or another project) replaced this one meanwhile
        steps.pop(0)(view)
        if steps:
            QTimer.singleShot(SHOW_STEP_MS, self, lambda: self._show_step(showing, view, steps))
        else:
            self.view = view

    def _show_cards(self, view: MonitoringView) -> None:
        self._fill_models(view.served)
        self.empty.setVisible(not view.served)
        self._fill_cards(view.report)

    def _show_marks(self, view: MonitoringView) -> None:
        server = view.report.get("server", {"restarts": 0, "events": []})
        self.charts.show_events([e["ts"] for e in server["events"] if e["kind"] == "restarted"])
        self.charts.show_spikes(view.series, view.report["anomalies"])

    def _show_quality(self, view: MonitoringView) -> None:
        counted = view.report.get("quality_last_labelled") or view.report.get("quality")
        self._fill_quality(counted)
        self._note_quality(counted, view.report.get("quality_last_labelled") is not None,
                           (view.report.get("quality") or {}).get("reference"))  # fmt: skip
        self.quality_chart.show_quality(view.report.get("quality_series"),
                                        (view.report.get("quality") or {}).get("reference"),
                                        view.report.get("estimated_series"))  # fmt: skip
        self.quality_chart.show()

    def _show_rest(self, view: MonitoringView) -> None:
        models = view.report["models"]
        self.drift.show_drift(models[0]["drift"] if len(models) == 1 else None)
        if self.side_tabs.currentWidget() is self.update_page:
            self.updates.reload_server()
        self.alerts.models = sorted({name for name, _ in view.served})
        self.alerts.show_view(view.alerts)
        firing = sum(e.state == "firing" for e in view.alerts.history)
        self.side_tabs.setTabText(2, f"Alerts ({firing} firing)" if firing else "Alerts")
        self.requests.set_models(view.served)
        self._requests_shown()
        self.updated.setText(time.strftime("updated %H:%M:%S"))

    # -- the Requests page ---------------------------------------------------------------

    def _requests_shown(self) -> None:
        """While the Requests page is shown, its newest page follows the log."""
        if self.side_tabs.currentWidget() is not self.requests:
            return
        if self.requests.page is None or self.requests.page.before is None:
            self.requests.reread()

    def _read_requests(self, selection: RequestFilter, before: int | None) -> None:
        if self.session is not None:
            ops.load_requests(self.session, selection, before, PAGE_ROWS,
                              self.requests.show_page, self._refused, self)  # fmt: skip

    def _update_shown(self) -> None:
        if self.side_tabs.currentWidget() is self.update_page:
            self.updates.reload()

    def _requests_job(self, action: str, selection: RequestFilter, **args: Any) -> None:
        if self.session is None:
            return
        job = {"action": action, "filter": dataclasses.asdict(selection), **args}
        ops.start_requests_job(self.session, job, self._request_jobs.add,
                               lambda exc: self.requests.show_done(str(exc)))  # fmt: skip

    def _set_retention(self, text: str) -> None:
        if self.session is not None:
            ops.set_retention(self.session, text, self._retention_set,
                              lambda exc: self.requests.show_done(str(exc)))  # fmt: skip

    def _retention_set(self, result: tuple[str, int]) -> None:
        label, deleted = result
        self.requests.show_done(f"Retention {label}: {deleted:,} old requests deleted")
        self.requests.reread()

    def _on_job_ended(self, job: Job) -> None:
        if job.id not in self._request_jobs or self.session is None:
            return
        self._request_jobs.discard(job.id)
        action = job.args.get("action")
        if action in UpdateController.ACTIONS:
            self.updates.job_ended(job)
        elif job.status != "succeeded" or job.result is None:
            detail = job.error or self.session.jobs.output(job.id).strip() or job.status
            self.requests.show_done(f"{describe_job(job)} failed: {detail}")
        elif action == "export":
            self.requests.show_done(f"Exported {job.result['rows']:,} requests to "
                                    f"{job.result['path']}")  # fmt: skip
        else:
            self.requests.show_replay(job.result)
        # (the job's row stays: forgetting it lets SQLite give its id to the next job,
        # which the session then takes for one already ended)

    def _fill_models(self, served: list[tuple[str, int]]) -> None:
        items: list[tuple[str, tuple[str | None, int | None]]] = [(ALL_MODELS, (None, None))]
        for name in sorted({n for n, _ in served}):
            items.append((name, (name, None)))
            items += [(f"{name}:{v}", (name, v)) for n, v in served if n == name]
        if [self.model_box.itemText(i) for i in range(self.model_box.count())] != [
            text for text, _ in items
        ]:
            self.model_box.clear()
            for text, data in items:
                self.model_box.addItem(text, data)
        wanted = (self.choice.model, self.choice.version)
        for i, (_, data) in enumerate(items):
            if data == wanted:
                self.model_box.setCurrentIndex(i)

    def _fill_cards(self, report: dict[str, Any]) -> None:
        errors = report["errors"]
        latency = report["latency_ms"]
        self.cards["requests"].set_value(f"{report['requests']:,}")
        restarts = report.get("server", {}).get("restarts", 0)
        self.cards["rate"].set_value(
            f"{report['requests_per_s']:.3g}",
            f"{restarts} server restart(s)" if restarts else "",
            alert=restarts > 0,
        )
        self.cards["errors"].set_value(
            f"{report['error_rate']:.1%}",
            f"4xx {errors['4xx']:,} · 5xx {errors['5xx']:,}",
            alert=errors["5xx"] > 0,
        )
        if latency["p50"] is None:
            self.cards["latency"].set_value("–")
        else:
            self.cards["latency"].set_value(
                " · ".join(f"{latency[k]:.3g}" for k in ("p50", "p95", "p99")), "milliseconds"
            )
        self.cards["rows"].set_value(f"{report['rows']:,}")
        value, detail = _quality_text(report.get("quality"))
        estimated = (report.get("estimated_quality") or {}).get("metrics", {}).get("accuracy")
        if estimated is not None:  # CBPE, from the answers' probabilities
            detail += f" · est. acc {estimated:.3f}"
        self.cards["quality"].set_value(value, detail)
        self.cards["anomalies"].set_value(*_anomaly_text(report["anomalies"]))

    def _fill_quality(self, quality: dict[str, Any] | None) -> None:
        per_class = (quality or {}).get("per_class", {})
        self.per_class.setRowCount(len(per_class))
        for row, (label, values) in enumerate(per_class.items()):
            cells = [label, *(f"{values[k]:.3f}" for k in ("precision", "recall", "f1")),
                     f"{values['support']:,}"]  # fmt: skip
            for column, text in enumerate(cells):
                self.per_class.setItem(row, column, QTableWidgetItem(text))
        labels = (quality or {}).get("labels", []) if per_class else []
        matrix = (quality or {}).get("confusion", [])
        self.confusion.setRowCount(len(labels))
        self.confusion.setColumnCount(len(labels))
        self.confusion.setHorizontalHeaderLabels(labels)
        self.confusion.setVerticalHeaderLabels(labels)
        for i, row_counts in enumerate(matrix if labels else []):
            for j, count in enumerate(row_counts):
                item = QTableWidgetItem(f"{count:,}")
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.confusion.setItem(i, j, item)

    def _note_quality(self, quality: dict[str, Any] | None, by_count: bool,
                      reference: dict[str, Any] | None) -> None:  # fmt: skip
        """Say on how many labelled rows the tables stand, and what they are read against."""
        if not quality:
            self.quality_note.setText("choose one model")
            return
        where = "the newest labelled rows" if by_count else "this window"
        text = f"{quality['labelled']:,} labelled rows ({where})"
        if all(v is None for v in quality["metrics"].values()):
            text += f": too few for metrics (at least {MIN_LABELLED})"
        if reference and reference["metrics"]:
            shown = " · ".join(f"{k} {v:.3f}" for k, v in list(reference["metrics"].items())[:2])
            text += f"; offline test of v{reference['version']}: {shown}"
        self.quality_note.setText(text)

    # -- labels imported later -------------------------------------------------------

    def import_labels(self, path: Path | None = None) -> None:
        """Import a CSV of labels (asks for the file when ``path`` is None)."""
        if self.session is None:
            return
        if path is None:
            chosen, _ = QFileDialog.getOpenFileName(
                self, "Import Labels", "", "Label files (*.csv);;All files (*)"
            )
            if not chosen:
                return
            path = Path(chosen)
        self.import_button.setEnabled(False)
        self.import_result.setText(f"Importing {path.name}…")
        ops.import_labels(self.session, path, self._on_labels_stored, self._on_labels_refused)

    def _on_labels_stored(self, stored: LabelImport) -> None:
        self.import_button.setEnabled(True)
        models = ", ".join(f"{ref}: {n:,}" for ref, n in sorted(stored.by_model.items()))
        self.import_result.setText(
            f"Stored {stored.labels:,} labels of {stored.requests:,} requests ({models})"
        )
        self.poller.poll()

    def _on_labels_refused(self, exc: BaseException) -> None:
        self.import_button.setEnabled(True)
        self.import_result.setText("Nothing imported: " + str(exc).splitlines()[0])
        show_exception(self, "Import labels", exc)

    # -- alerts ------------------------------------------------------------------------

    def _add_alert(self, spec: RuleSpec) -> None:
        if self.session is not None:
            ops.add_alert(self.session, spec, lambda _rule: self.poller.poll(), self._refused)

    def _remove_alert(self, name: str) -> None:
        if self.session is not None:
            ops.remove_alert(self.session, name, lambda _none: self.poller.poll(), self._refused)

    def _refused(self, exc: BaseException) -> None:
        show_exception(self, "Alert rule", exc)

    def _on_fired(self, events: list[AlertEvent]) -> None:
        for event in events:
            self.notifier.notify("Lepton Desktop alert", event.message, ok=False)


def _quality_text(quality: dict[str, Any] | None) -> tuple[str, str]:
    if not quality:
        return "–", "choose one model"
    labelled = quality["labelled"]
    metrics = quality["metrics"]
    if all(v is None for v in metrics.values()):
        return "–", f"{labelled:,} labelled rows: too few"
    if quality["kind"] == "classification":
        return (f"acc {metrics['accuracy']:.3f} · F1 {metrics['f1']:.3f}",
                f"{labelled:,} labelled rows")  # fmt: skip
    return (f"MAE {metrics['mae']:.4g} · R² {metrics['r2']:.3f}",
            f"RMSE {metrics['rmse']:.4g} · {labelled:,} labelled rows")  # fmt: skip


def _anomaly_text(anomalies: dict[str, Any]) -> tuple[str, str, bool]:
    flagged = anomalies["requests_flagged"]
    spikes = len(anomalies["latency_spikes"]) + len(anomalies["error_spikes"])
    kinds = ", ".join(f"{k.replace('_', ' ')} {n:,}" for k, n in anomalies["by_kind"].items()
                      if n)  # fmt: skip
    detail = f"{kinds or 'no request flagged'} · {spikes} spike{'s' * (spikes != 1)}"
    return f"{flagged:,} requests", detail, bool(flagged or spikes)


class _Card(QFrame):
    """A number with a title above and a detail below."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = QLabel(title, self)
        self.value = QLabel("–", self)
        font = self.value.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        self.value.setFont(font)
        self.detail = QLabel("", self)
        # An empty detail keeps its line: a card that grew when its detail appeared
        # would re-lay out the whole tab, charts included (a repaint of every chart).
        self.detail.setMinimumHeight(self.detail.fontMetrics().height())
        self._alert = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.addWidget(self.title)
        layout.addWidget(self.value)
        layout.addWidget(self.detail)

    def set_value(self, value: str, detail: str = "", alert: bool = False) -> None:
        """Show ``value`` (red when ``alert``) and ``detail``."""
        self.value.setText(value)
        if alert != self._alert:  # a style sheet re-polishes the label: only on change
            self._alert = alert
            self.value.setStyleSheet("color: #d62828;" if alert else "")
        self.detail.setText(detail)
