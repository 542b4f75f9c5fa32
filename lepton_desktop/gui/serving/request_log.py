"""The live request log: a virtual table model fed incrementally, its view, and the
panel that shows one request's captured inputs and outputs.

Rows arrive in batches from the poller (``id > last_seen``) and are appended with one
``beginInsertRows`` per batch; the oldest rows are dropped beyond :data:`MAX_ROWS`, so
a server that answers for days keeps the window's memory flat. The table keeps the
rows slim (no inputs, no outputs): the detail panel reads the one request clicked.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QPlainTextEdit,
    QTableView,
    QWidget,
)

from lepton_desktop.core.entities import RequestRecord
from lepton_desktop.gui.widgets.table_model import FlatTableModel, Index, setup_row_table

COLUMNS = ("Time", "Method", "Path", "Model", "Status", "Latency ms", "Rows")
#: Rows kept in the table (older ones are dropped from view, not from the project).
MAX_ROWS = 20_000
RECORD_ROLE = Qt.ItemDataRole.UserRole
#: Status colours that read on light and dark backgrounds.
STATUS_COLORS = {2: "#2a9d8f", 3: "#3a7bd5", 4: "#e08a1e", 5: "#d64545"}
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_STATUS_COLUMN = COLUMNS.index("Status")


def model_text(record: RequestRecord) -> str:
    """``name:version`` (or the name, or nothing) of the model a request reached."""
    if not record.model:
        return ""
    return f"{record.model}:{record.version}" if record.version is not None else record.model


def time_text(ts: float) -> str:
    """Local wall-clock time with milliseconds."""
    return time.strftime("%H:%M:%S", time.localtime(ts)) + f".{int(ts * 1000) % 1000:03d}"


class RequestLogModel(FlatTableModel):
    """Logged requests, oldest first, at most :data:`MAX_ROWS` of them."""

    def __init__(self, parent: Any = None, max_rows: int = MAX_ROWS) -> None:
        super().__init__(parent)
        self.records: list[RequestRecord] = []
        self.max_rows = max_rows

    def append(self, records: Sequence[RequestRecord]) -> None:
        """Add a batch of newer rows (slimmed), dropping the oldest beyond the cap."""
        if not records:
            return
        batch = [dataclasses.replace(r, inputs=None, outputs=None) for r in records]
        batch = batch[-self.max_rows :]
        overflow = len(self.records) + len(batch) - self.max_rows
        if overflow > 0:
            self.beginRemoveRows(QModelIndex(), 0, overflow - 1)
            del self.records[:overflow]
            self.endRemoveRows()
        first = len(self.records)
        self.beginInsertRows(QModelIndex(), first, first + len(batch) - 1)
        self.records.extend(batch)
        self.endInsertRows()

    def clear(self) -> None:
        """Show no rows (another deployment)."""
        self.beginResetModel()
        self.records = []
        self.endResetModel()

    def record(self, row: int) -> RequestRecord | None:
        """The row's request."""
        return self.records[row] if 0 <= row < len(self.records) else None

    # -- QAbstractTableModel ---------------------------------------------------------------

    def row_total(self) -> int:
        """Rows shown."""
        return len(self.records)

    def column_titles(self) -> Sequence[str]:
        """The fixed columns."""
        return COLUMNS

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Text, status colours, right-aligned numbers and the record itself."""
        if not index.isValid():
            return None
        record = self.records[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return _CELLS[column](record)
        if role == Qt.ItemDataRole.ForegroundRole and column == _STATUS_COLUMN:
            return QColor(STATUS_COLORS.get(record.status // 100, "#8a8f98"))
        if role == Qt.ItemDataRole.TextAlignmentRole and column >= _STATUS_COLUMN:
            return _RIGHT
        if role == Qt.ItemDataRole.ToolTipRole and record.error:
            return record.error
        if role == RECORD_ROLE:
            return record
        return None


#: A cell's text, per column of :data:`COLUMNS` (looked up by index: data() runs per
#: cell painted).
_CELLS: tuple[Callable[[RequestRecord], str], ...] = (
    lambda r: time_text(r.ts),
    lambda r: r.method,
    lambda r: r.path,
    model_text,
    lambda r: str(r.status),
    lambda r: f"{r.latency_ms:.1f}",
    lambda r: str(r.n_rows),
)
assert len(_CELLS) == len(COLUMNS)


class RequestLogView(QTableView):
    """The log table; follows new rows while scrolled to the bottom.

    Signals:
        requestActivated(RequestRecord): the user selected a row.
    """

    requestActivated = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.log = RequestLogModel(self)
        self.setModel(self.log)
        row_height = self.fontMetrics().height() + 6
        setup_row_table(self, QAbstractItemView.SelectionMode.SingleSelection, row_height)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        # Fixed row heights: the view never measures rows (fast with 20,000 of them).
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        header = self.horizontalHeader()
        header.setSectionResizeMode(COLUMNS.index("Path"), QHeaderView.ResizeMode.Stretch)
        for name, width in (
            ("Time", 100),
            ("Method", 64),
            ("Model", 130),
            ("Status", 56),
            ("Latency ms", 84),
            ("Rows", 48),
        ):
            header.resizeSection(COLUMNS.index(name), width)
        self.selectionModel().currentRowChanged.connect(self._on_current_changed)
        self.log.rowsAboutToBeInserted.connect(self._remember_following)
        self.log.rowsInserted.connect(self._follow)
        self._following = True

    def append(self, records: Sequence[RequestRecord]) -> None:
        """Add newer rows."""
        self.log.append(records)

    def show_records(self, records: Sequence[RequestRecord]) -> None:
        """Show exactly these rows (oldest first): search results, run again as requests
        arrive. The request selected stays selected (and in view) when still there."""
        current = self.log.record(self.currentIndex().row())
        self.log.clear()
        self.log.append(records)
        ids = [r.request_id for r in self.log.records]
        if current is None or current.request_id not in ids:
            self.scrollToBottom()
            return
        row = ids.index(current.request_id)
        # The same request: the detail panel already shows it, nothing to read again.
        self.selectionModel().blockSignals(True)
        self.selectRow(row)
        self.selectionModel().blockSignals(False)
        self.scrollTo(self.log.index(row, 0))

    def _remember_following(self) -> None:
        bar = self.verticalScrollBar()
        self._following = bar.value() >= bar.maximum() - 2

    def _follow(self) -> None:
        if self._following:
            self.scrollToBottom()

    def _on_current_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        record = self.log.record(current.row()) if current.isValid() else None
        if record is not None:
            self.requestActivated.emit(record)


class RequestDetail(QPlainTextEdit):
    """One request: its line, and the inputs and outputs the server captured."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.setPlaceholderText("Click a request to see what it sent and what it got back.")
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.request_id: str | None = None

    def show_record(self, record: RequestRecord | None, loading: bool = False) -> None:
        """Show ``record`` (None: nothing); ``loading``: its captured data is on its way."""
        if record is None:
            self.request_id = None
            self.clear()
            return
        self.request_id = record.request_id
        self.setPlainText(detail_text(record, loading))


def detail_text(record: RequestRecord, loading: bool = False) -> str:
    """The detail panel's text for one request."""
    rows = f"{record.n_rows} row{'s' if record.n_rows != 1 else ''}"
    lines = [
        f"{record.method} {record.path}  →  {record.status}   {record.latency_ms:.2f} ms   {rows}",
        f"{time_text(record.ts)}   {model_text(record) or 'no model'}   {record.protocol}   "
        f"request {record.request_id}",
    ]
    if record.error:
        lines += ["", "Error", record.error]
    if loading:
        return "\n".join([*lines, "", "Reading the captured inputs…"])
    if record.inputs is None and record.outputs is None:
        lines += [
            "",
            "Inputs and outputs were not captured ('Capture request inputs' was off, "
            "or the request carried none).",
        ]
        return "\n".join(lines)
    lines += ["", "Inputs", _json(record.inputs), "", "Outputs", _json(record.outputs)]
    return "\n".join(lines)


def _json(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        # One record (or answer) a line: rows stay readable side by side.
        items = (json.dumps(v, ensure_ascii=False, default=str) for v in value)
        text = "[\n  " + ",\n  ".join(items) + "\n]"
    else:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    # A captured image is base64 text: the panel shows its start, not megabytes of it.
    limit = 200_000
    return text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit} more)"
