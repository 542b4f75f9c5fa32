"""The Monitoring tab's Requests page: the request log filtered, paged, exported, replayed.

Filters (model and version, status, time, anomaly flags, feedback) make a
:class:`~lepton_desktop.core.monitoring.requests.RequestFilter`; the page is read on
the DB thread as one keyset page (:data:`PAGE_ROWS` rows below an id), so Older and
Newer cost the same on ten rows or ten million. Export and replay run as a
``requests`` worker job (progress in the jobs bar); the replay's diff is shown here
when its job ends. The retention setting is stored and applied from here too.
"""

from __future__ import annotations

import json
import time
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop.core.entities import RequestRecord
from lepton_desktop.core.monitoring.requests import COUNT_CAP, RequestFilter
from lepton_desktop.gui.monitoring.ops import RequestsPage

PAGE_ROWS = 200
COLUMNS = ("Time", "Model", "Status", "Latency ms", "Rows", "Request id")
STATUSES = (("Any status", None), ("2xx", "2xx"), ("4xx", "4xx"), ("5xx", "5xx"),
            ("Errors", "error"))  # fmt: skip
SPANS = (("Any time", None), ("Last 15 minutes", 900), ("Last hour", 3600),
         ("Last 24 hours", 86400), ("Last 7 days", 7 * 86400))  # fmt: skip
FEEDBACK = (("With or without labels", None), ("Labelled", True), ("Unlabelled", False))
STATUS_COLORS = {2: "#2a9d8f", 3: "#3a7bd5", 4: "#e08a1e", 5: "#d64545"}


class RequestsPanel(QWidget):
    """The filtered log (see the module docstring); emits what the user asks for.

    Signals:
        pageRequested(RequestFilter, object): read the page below an id (None: newest).
        exportRequested(RequestFilter, str): export the selection to a file.
        replayRequested(RequestFilter, str): replay the selection on a ``name:version``.
        retentionRequested(str): store and apply this retention (``30d``, ...).
    """

    pageRequested = Signal(object, object)
    exportRequested = Signal(object, str)
    replayRequested = Signal(object, str)
    retentionRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.page: RequestsPage | None = None
        self._newer: list[int | None] = []  # the ``before`` of the pages above this one
        self._asked: tuple[RequestFilter, int | None] | None = None  # the page wanted
        self.model_box = QComboBox(self)
        self.status_box = _combo(STATUSES, self)
        self.span_box = _combo(SPANS, self)
        self.feedback_box = _combo(FEEDBACK, self)
        self.anomalous = QCheckBox("Anomalous only", self)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.detail = QPlainTextEdit(self)
        self.count_label = QLabel(self)
        self.newer_button = QPushButton("◀ Newer", self)
        self.older_button = QPushButton("Older ▶", self)
        self.export_button = QPushButton("Export…", self)
        self.replay_box = QComboBox(self)
        self.replay_button = QPushButton("Replay on", self)
        self.result = QLabel(self)
        self.retention_edit = QLineEdit(self)
        self.retention_button = QPushButton("Set retention", self)
        self._build()
        self._connect()

    def _build(self) -> None:
        self.model_box.setMinimumContentsLength(14)
        self.model_box.setToolTip("Requests answered by this model (and version)")
        self.export_button.setToolTip("Write every request the filters keep to CSV or Parquet")
        self.replay_box.setToolTip("Answer the filtered requests again with this version")
        self.retention_edit.setPlaceholderText("30d, 1000000rows or off")
        self.retention_edit.setToolTip(
            "Delete requests older than this (days) or beyond the newest N rows; the "
            "charts' history is kept")  # fmt: skip
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.detail.setReadOnly(True)
        self.detail.setPlaceholderText("Click a request for its inputs and outputs")
        self.result.setWordWrap(True)
        filters = QHBoxLayout()
        for widget in (self.model_box, self.status_box, self.span_box, self.feedback_box,
                       self.anomalous):  # fmt: skip
            filters.addWidget(widget)
        filters.addStretch(1)
        pager = QHBoxLayout()
        pager.addWidget(self.count_label, 1)
        pager.addWidget(self.newer_button)
        pager.addWidget(self.older_button)
        actions = QHBoxLayout()
        for widget in (self.export_button, self.replay_button, self.replay_box):
            actions.addWidget(widget)
        actions.addStretch(1)
        actions.addWidget(QLabel("Keep:", self))
        actions.addWidget(self.retention_edit)
        actions.addWidget(self.retention_button)
        split = QSplitter(self)
        split.setOrientation(self.table.verticalScrollBar().orientation())
        split.addWidget(self.table)
        split.addWidget(self.detail)
        split.setStretchFactor(0, 3)
        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(split, 1)
        layout.addLayout(pager)
        layout.addLayout(actions)
        layout.addWidget(self.result)

    def _connect(self) -> None:
        for box in (self.model_box, self.status_box, self.span_box, self.feedback_box):
            box.activated.connect(lambda _i: self.refresh())
        self.anomalous.toggled.connect(lambda _on: self.refresh())
        self.older_button.clicked.connect(self._older)
        self.newer_button.clicked.connect(self._newer_page)
        self.table.currentCellChanged.connect(lambda row, *_: self._show_detail(row))
        self.export_button.clicked.connect(self._export)
        self.replay_button.clicked.connect(self._replay)
        self.retention_button.clicked.connect(
            lambda: self.retentionRequested.emit(self.retention_edit.text().strip() or "off")
        )

    # -- what the user chose -----------------------------------------------------------

    def selection(self, now: float | None = None) -> RequestFilter:
        """The filter the widgets describe."""
        model, version = self.model_box.currentData() or (None, None)
        span = self.span_box.currentData()
        since = None if span is None else (time.time() if now is None else now) - span
        return RequestFilter(model=model, version=version, status=self.status_box.currentData(),
                             since=since, anomalous=self.anomalous.isChecked(),
                             has_feedback=self.feedback_box.currentData())  # fmt: skip

    def refresh(self) -> None:
        """Read the newest page of the current filters."""
        self._newer = []
        self._ask(self.selection(), None)

    def reread(self) -> None:
        """Read the page asked for last again (new rows appear on the newest page)."""
        if self._asked is None:
            self.refresh()
        else:
            self._ask(*self._asked)

    def forget(self) -> None:
        """Another project: no page, none asked for."""
        self.page, self._asked, self._newer = None, None, []
        self.table.setRowCount(0)

    def _ask(self, selection: RequestFilter, before: int | None) -> None:
        self._asked = (selection, before)
        self.pageRequested.emit(selection, before)

    def _older(self) -> None:
        if self.page is not None and self.page.records:
            self._newer.append(self.page.before)
            self._ask(self.page.selection, self.page.records[-1].id)

    def _newer_page(self) -> None:
        if self.page is not None and self._newer:
            self._ask(self.page.selection, self._newer.pop())

    def _export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export requests", "requests.parquet",
                                              "Parquet (*.parquet);;CSV (*.csv)")  # fmt: skip
        if path:
            self.exportRequested.emit(self._current_selection(), path)

    def _replay(self) -> None:
        target = self.replay_box.currentData()
        if target:
            self.result.setText(f"Replaying on {target}…")
            self.replayRequested.emit(self._current_selection(), target)

    def _current_selection(self) -> RequestFilter:
        return self.page.selection if self.page is not None else self.selection()

    # -- showing -----------------------------------------------------------------------

    def set_models(self, served: list[tuple[str, int]]) -> None:
        """The model picker: every model and version that answered."""
        chosen = self.model_box.currentData()
        entries = [("All models", None)]
        for name in sorted({n for n, _ in served}):
            entries.append((name, (name, None)))
            entries += [(f"  {name}:{v}", (name, v)) for n, v in served if n == name]
        if [self.model_box.itemData(i) for i in range(self.model_box.count())] == [
                e[1] for e in entries]:  # fmt: skip
            return  # unchanged: keep the user's open popup and choice
        self.model_box.clear()
        for label, data in entries:
            self.model_box.addItem(label, data)
        self.model_box.setCurrentIndex(max(self.model_box.findData(chosen), 0))

    def show_done(self, text: str) -> None:
        """Say how an export or a refused action ended."""
        self.result.setText(text)

    def show_page(self, page: RequestsPage) -> None:
        """Fill the table with one page (a page asked for before the last is dropped)."""
        if self._asked is not None and (page.selection, page.before) != self._asked:
            return
        same_rows = self.page is not None and [r.id for r in self.page.records] == [
            r.id for r in page.records]  # fmt: skip
        self.page = page
        self._show_counts(page)
        if same_rows:
            return  # a re-read with nothing new: keep the user's row and its detail
        if self.table.currentRow() >= 0:
            self.table.setCurrentCell(-1, -1)  # the detail showed a row of another page
        self.table.setRowCount(len(page.records))
        for row, record in enumerate(page.records):
            for column, text in enumerate(_cells(record)):
                item = QTableWidgetItem(text)
                if column == 2:
                    item.setForeground(QColor(STATUS_COLORS.get(record.status // 100, "#888")))
                self.table.setItem(row, column, item)

    def _show_counts(self, page: RequestsPage) -> None:
        """The count line, the pager's buttons, the replay targets, the retention."""
        matches = f"{COUNT_CAP:,}+" if page.matches >= COUNT_CAP else f"{page.matches:,}"
        where = "newest" if page.before is None else f"below #{page.before}"
        self.count_label.setText(f"{matches} requests match · {len(page.records)} shown "
                                 f"({where}) · retention: {page.retention}")  # fmt: skip
        if [self.replay_box.itemData(i) for i in range(self.replay_box.count())] != page.versions:
            target = self.replay_box.currentData()
            self.replay_box.clear()
            for ref in page.versions:
                self.replay_box.addItem(ref, ref)
            self.replay_box.setCurrentIndex(max(self.replay_box.findData(target), 0))
        self.newer_button.setEnabled(bool(self._newer))
        self.older_button.setEnabled(len(page.records) == PAGE_ROWS)
        if not self.retention_edit.hasFocus():
            self.retention_edit.setText("" if page.retention == "keep all" else page.retention)

    def _show_detail(self, row: int) -> None:
        if self.page is None or not 0 <= row < len(self.page.records):
            self.detail.clear()
            return
        record = self.page.records[row]
        self.detail.setPlainText(
            f"{record.request_id}  {record.method} {record.path}  {record.status}"
            + (f"\nerror: {record.error}" if record.error else "")
            + f"\n\ninputs:\n{_pretty(record.inputs)}\n\noutputs:\n{_pretty(record.outputs)}"
        )

    def show_replay(self, result: dict[str, Any]) -> None:
        """The diff of a finished replay."""
        if not result.get("rows"):
            self.result.setText(
                f"Nothing to replay on {result.get('target')}: "
                f"{result.get('skipped', 0)} requests without captured records"
            )
            return
        quality = result.get("quality")
        scored = (
            f"; {quality['metric']} on {result['labelled']} labelled rows "
            f"{quality['before']:.3f} → {quality['after']:.3f}"
            if quality
            else ""
        )
        self.result.setText(
            f"Replayed {result['requests']:,} requests ({result['rows']:,} rows) on "
            f"{result['target']}: {result['agreement']:.1%} agree, {result['changed']:,} "
            f"changed{scored} (changed rows listed above)."
        )
        self.table.setCurrentCell(-1, -1)
        lines = [f"Rows that {result['target']} answers differently ({result['changed']:,}):"]
        lines += [f"{c['request_id']} row {c['row']}: {c['before']} -> {c['after']}"
                  + ("" if c["truth"] is None else f"  (truth {c['truth']})")
                  for c in result["changes"]]  # fmt: skip
        self.detail.setPlainText("\n".join(lines))


def _combo(items: tuple[tuple[str, Any], ...], parent: QWidget) -> QComboBox:
    box = QComboBox(parent)
    for label, value in items:
        box.addItem(label, value)
    return box


def _cells(record: RequestRecord) -> tuple[str, ...]:
    when = time.strftime("%m-%d %H:%M:%S", time.localtime(record.ts))
    model = "" if not record.model else f"{record.model}:{record.version}"
    if record.protocol == "shadow":
        model += " (shadow)"
    return (when, model, str(record.status), f"{record.latency_ms:.2f}", str(record.n_rows),
            record.request_id)  # fmt: skip


def _pretty(value: Any) -> str:
    if value is None:
        return "(not captured)"
    text = json.dumps(value, indent=1, ensure_ascii=False)
    return text if len(text) < 20_000 else text[:20_000] + "\n…"
