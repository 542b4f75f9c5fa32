"""The trials table: a virtual model over a StudyView's columns, sorted and filtered in numpy.

A QSortFilterProxyModel would call ``data()`` for every row on each sort (about half
a second for 10,000 trials); here the model keeps ``order`` (view rows in table
order) and sorting or filtering recomputes that array with numpy
(``core/tuning/trial_filter.py``). Only the rows on screen are ever formatted.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from PySide6.QtCore import (
    QItemSelectionModel,
    QModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop.core.tuning import trial_filter
from lepton_desktop.core.tuning.reading import COMPLETE, FAIL, PRUNED, RUNNING, STATES, WAITING
from lepton_desktop.core.tuning.study_view import StudyView
from lepton_desktop.gui.widgets.formatting import format_duration
from lepton_desktop.gui.widgets.table_model import FlatTableModel, Index, setup_sorted_table

ROW_ROLE = Qt.ItemDataRole.UserRole  # the trial's row in the view
#: The state filter's entries: (label, states or None for any).
STATE_FILTERS = (
    ("All states", None),
    ("Complete", (COMPLETE,)),
    ("Pruned", (PRUNED,)),
    ("Failed", (FAIL,)),
    ("Running", (RUNNING, WAITING)),
)
_STATE_COLORS = {
    COMPLETE: "#2a9d8f",
    PRUNED: "#e76f51",
    FAIL: "#d62828",
    RUNNING: "#3a7bd5",
    WAITING: "#8a8f98",
}


class TrialTableModel(FlatTableModel):
    """Trials of a view: number, state, objective(s), duration, run, then parameters."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.view: StudyView | None = None
        self.order = np.zeros(0, dtype=np.int64)
        self.columns: list[tuple[str, str]] = []  # (title, sort key)
        self.states: tuple[int, ...] | None = None
        self.query = ""
        self.sort_key, self.descending = "number", False
        self._texts: trial_filter.TrialTexts | None = None

    def set_view(self, view: StudyView | None) -> None:
        """Show another study's trials."""
        self.beginResetModel()
        self.view = view
        self._texts = trial_filter.TrialTexts(view) if view is not None else None
        self.columns = self._columns()
        self.order = self._order()
        self.endResetModel()

    def refresh(self) -> None:
        """The view changed: recompute columns (new parameters) and the row order."""
        columns = self._columns()
        if columns != self.columns:
            self.beginResetModel()
            self.columns, self.order = columns, self._order()
            self.endResetModel()
            return
        self.layoutAboutToBeChanged.emit()
        kept = self.persistentIndexList()  # the view's selection and current cell
        trials = [self._trial_at(index.row()) for index in kept]
        self.order = self._order()
        moved = [self._index_of(t, i.column()) for t, i in zip(trials, kept, strict=True)]
        self.changePersistentIndexList(kept, moved)
        self.layoutChanged.emit()
        if len(self.order):
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(self.order) - 1, len(self.columns) - 1)
            )

    def set_filter(self, states: tuple[int, ...] | None, query: str) -> None:
        """Show only trials in ``states`` matching ``query`` (see trial_filter)."""
        self.states, self.query = states, query
        self.refresh()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort by a column (numpy, not per-row comparisons)."""
        if 0 <= column < len(self.columns):
            self.sort_key = self.columns[column][1]
            self.descending = order == Qt.SortOrder.DescendingOrder
            self.refresh()

    def _columns(self) -> list[tuple[str, str]]:
        view = self.view
        if view is None:
            return []
        objectives = [(view.objective_name(k), f"value:{k}") for k in range(view.n_objectives)]
        params = [(name, f"param:{name}") for name in view.params]
        return [
            ("#", "number"),
            ("State", "state"),
            *objectives,
            ("Duration", "duration"),
            *params,
            ("Run", "run"),
        ]

    def _order(self) -> np.ndarray:
        view = self.view
        if view is None:
            return np.zeros(0, dtype=np.int64)
        rows = trial_filter.filter_rows(view, self.states, self.query, self._texts)
        if {k for _, k in self.columns} and self.sort_key not in {k for _, k in self.columns}:
            self.sort_key = "number"
        return trial_filter.sort_rows(view, rows, self.sort_key, self.descending)

    def _trial_at(self, row: int) -> int | None:
        return int(self.order[row]) if 0 <= row < len(self.order) else None

    def _index_of(self, view_row: int | None, column: int) -> QModelIndex:
        # Where a re-sorted or re-filtered trial now sits (invalid: filtered out).
        row = None if view_row is None else self.row_of(view_row)
        return QModelIndex() if row is None else self.index(row, column)

    def row_of(self, view_row: int) -> int | None:
        """The table row showing a view row, or None (filtered out)."""
        hits = np.flatnonzero(self.order == view_row)
        return int(hits[0]) if len(hits) else None

    # -- Qt model ----------------------------------------------------------------------

    def row_total(self) -> int:
        """Trials shown."""
        return len(self.order)

    def column_titles(self) -> list[str]:
        """See :meth:`_columns`."""
        return [title for title, _key in self.columns]

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Text of one cell, the state's colour, the view row."""
        if not index.isValid() or self.view is None:
            return None
        row = int(self.order[index.row()])
        key = self.columns[index.column()][1]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, key)
        if role == ROW_ROLE:
            return row
        if role == Qt.ItemDataRole.ForegroundRole and key == "state":
            return QColor(_STATE_COLORS[int(self.view.states[row])])
        if (
            role == Qt.ItemDataRole.TextAlignmentRole
            and key not in ("state",)
            and not key.startswith("param:")
        ):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _text(self, row: int, key: str) -> str:
        view = self.view
        assert view is not None
        if key == "number":
            return str(int(view.numbers[row]))
        if key == "state":
            return STATES[int(view.states[row])].capitalize()
        if key == "duration":
            return _duration(view, row)
        if key == "run":
            return str(int(view.run_ids[row])) if view.run_ids[row] >= 0 else ""
        if key.startswith("value:"):
            value = view.values[row, int(key[6:])]
            return f"{value:.5g}" if np.isfinite(value) else ""
        column = view.params.get(key[6:])
        return column.text(row) if column is not None else ""


def _duration(view: StudyView, row: int) -> str:
    start, end = view.starts[row], view.completes[row]
    if not np.isfinite(start):
        return ""
    end = end if np.isfinite(end) else time.time()
    return format_duration(max(0.0, end - start))


class TrialTable(QWidget):
    """The trials table with its state filter and search box.

    Args:
        parent: the parent widget.
    """

    trialSelected = Signal(object)  # the selected trial's view row, or None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = TrialTableModel(self)
        self.state_filter = QComboBox(self)
        for label, states in STATE_FILTERS:
            self.state_filter.addItem(label, states)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Filter: lr<0.01 activation=relu value<0.3 …")
        self.search.setClearButtonEnabled(True)
        self.count = QLabel(self)
        self.table = self._make_table()
        bar = QHBoxLayout()
        bar.addWidget(self.state_filter)
        bar.addWidget(self.search, 1)
        bar.addWidget(self.count)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)
        # Typing filters after a short pause, not on every key (10,000 rows of text).
        self._debounce = QTimer(self, singleShot=True, interval=200, timeout=self._apply_filter)
        self.search.textChanged.connect(lambda _text: self._debounce.start())
        self.state_filter.currentIndexChanged.connect(lambda _i: self._apply_filter())
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        self._selected: int | None = None

    def _make_table(self) -> QTableView:
        table = QTableView(self)
        setup_sorted_table(
            table,
            self.model,
            Qt.SortOrder.AscendingOrder,
            QAbstractItemView.SelectionMode.SingleSelection,
            22,
        )
        table.horizontalHeader().setDefaultSectionSize(84)
        return table

    def set_view(self, view: StudyView | None) -> None:
        """Show another study's trials."""
        self._selected = None
        self.model.set_view(view)
        self._update_count()

    def refresh(self) -> None:
        """The view changed: re-sort, re-filter, keep the selected trial selected."""
        self.model.refresh()
        self._reselect()
        self._update_count()

    def select_row(self, view_row: int | None) -> None:
        """Select a trial by its view row (clears the filter if it hides the trial)."""
        if view_row is not None and self.model.row_of(view_row) is None:
            self.search.clear()
            self.state_filter.setCurrentIndex(0)
            self._apply_filter()
        self._selected = view_row
        self._reselect()

    def selected_row(self) -> int | None:
        """The selected trial's view row."""
        return self._selected

    def _apply_filter(self) -> None:
        self.model.set_filter(self.state_filter.currentData(), self.search.text().strip())
        self._reselect()
        self._update_count()

    def _reselect(self) -> None:
        selection = self.table.selectionModel()
        row = self.model.row_of(self._selected) if self._selected is not None else None
        selection.blockSignals(True)
        if row is None:
            selection.clearSelection()
        else:
            flags = (
                QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows
            )
            index = self.model.index(row, 0)
            selection.select(index, flags)
            selection.setCurrentIndex(index, QItemSelectionModel.SelectionFlag.NoUpdate)
            self.table.scrollTo(index)
        selection.blockSignals(False)
        self.table.viewport().update()

    def _on_selection(self, *args: object) -> None:
        rows = self.table.selectionModel().selectedRows()
        self._selected = int(self.model.order[rows[0].row()]) if rows else None
        self.trialSelected.emit(self._selected)

    def _update_count(self) -> None:
        total = self.model.view.n if self.model.view is not None else 0
        shown = len(self.model.order)
        self.count.setText(
            f"{shown:,} of {total:,} trials" if shown != total else f"{total:,} trials"
        )
