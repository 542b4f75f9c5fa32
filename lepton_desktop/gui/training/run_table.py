"""The runs table: a QAbstractTableModel over ``list[Run]`` and its view.

Refreshes keep the rows that stay (removing and inserting only what changed), so
the user's selection survives the polling. Several rows can be selected: their
curves are overlaid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import (
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QPoint,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QAbstractItemView, QMenu, QTableView, QWidget

from lepton_desktop.core.entities import ModelVersion, Run
from lepton_desktop.core.training import strong_baseline
from lepton_desktop.gui.training import run_format as fmt
from lepton_desktop.gui.training.ops import RunsSnapshot
from lepton_desktop.gui.widgets.formatting import format_duration
from lepton_desktop.gui.widgets.table_model import FlatTableModel, Index, setup_sorted_table

COLUMNS = (
    "Run",
    "Dataset",
    "Arch",
    "Status",
    "Epochs",
    "Duration",
    "Best",
    "Gain vs strong",
    "ε",
    "Model",
)
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
RUN_ROLE = Qt.ItemDataRole.UserRole


class RunTableModel(FlatTableModel):
    """Runs (newest first) with their model version and whether they are stale."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.runs: list[Run] = []
        self.models: dict[int, ModelVersion] = {}
        self.stale: set[int] = set()

    # -- content ----------------------------------------------------------------------

    def set_snapshot(self, snapshot: RunsSnapshot) -> None:
        """Show these runs, removing and inserting rows only where ids changed."""
        self.models = dict(snapshot.models)
        self.stale = set(snapshot.stale)
        keep = {r.id for r in snapshot.runs}
        for row in reversed(range(len(self.runs))):
            if self.runs[row].id not in keep:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self.runs[row]
                self.endRemoveRows()
        for row, run in enumerate(snapshot.runs):
            if row >= len(self.runs) or self.runs[row].id != run.id:
                self.beginInsertRows(QModelIndex(), row, row)
                self.runs.insert(row, run)
                self.endInsertRows()
        if [r.id for r in self.runs] != [r.id for r in snapshot.runs]:
            self.beginResetModel()  # not newest-first: should not happen, but stay right
            self.runs = list(snapshot.runs)
            self.endResetModel()
        self.runs = list(snapshot.runs)
        self._changed(0, len(self.runs) - 1)

    def update_run(self, run: Run, stale: bool) -> bool:
        """Replace one run's row; returns whether its status changed."""
        row = self.row_of(run.id)
        if row is None:
            return False
        before = fmt.status_text(self.runs[row], run.id in self.stale)
        self.runs[row] = run
        (self.stale.add if stale else self.stale.discard)(run.id)
        self._changed(row, row)
        return before != fmt.status_text(run, stale)

    def tick(self) -> None:
        """Repaint the durations of running runs (they grow by themselves)."""
        for row, run in enumerate(self.runs):
            if run.status == "running":
                index = self.index(row, COLUMNS.index("Duration"))
                # No roles list: PySide6 6.12 mis-counts references of that list and
                # aborts the interpreter at exit ("none_dealloc").
                self.dataChanged.emit(index, index)

    def row_of(self, run_id: int) -> int | None:
        """The row of a run, or None."""
        return next((i for i, r in enumerate(self.runs) if r.id == run_id), None)

    def run(self, run_id: int) -> Run | None:
        """The run with this id, or None."""
        row = self.row_of(run_id)
        return None if row is None else self.runs[row]

    def active_ids(self) -> list[int]:
        """Runs that are queued, running or paused."""
        return [r.id for r in self.runs if fmt.is_active(r)]

    def _changed(self, first: int, last: int) -> None:
        if last >= first:
            self.dataChanged.emit(self.index(first, 0), self.index(last, len(COLUMNS) - 1))

    # -- Qt model --------------------------------------------------------------------

    def row_total(self) -> int:
        """One row per run."""
        return len(self.runs)

    def column_titles(self) -> Sequence[str]:
        """See :data:`COLUMNS`."""
        return COLUMNS

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Text, status colour, tooltips, the Run itself and sort keys."""
        if not index.isValid():
            return None
        run = self.runs[index.row()]
        column = COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(run, column)
        if role == RUN_ROLE:
            return run
        if role == SORT_ROLE:
            return self._sort_key(run, column)
        return self._decoration(run, column, role)

    def _text(self, run: Run, column: str) -> str:
        stale = run.id in self.stale
        model = self.models.get(run.id)
        texts = {
            "Run": str(run.id),
            "Dataset": run.dataset_ref,
            "Arch": run.arch.upper(),
            "Status": fmt.status_text(run, stale) + (" (archived)" if run.archived else ""),
            "Epochs": str(run.epochs_done)
            + (f" / {run.config['epochs']}" if run.config.get("epochs") else ""),
            "Duration": format_duration(fmt.live_duration(run)),
            "Best": fmt.best_text(run),
            "Gain vs strong": fmt.gain_text(run),
            "ε": fmt.epsilon_text(run),
            "Model": _model_text(model),
        }
        return texts[column]

    def _sort_key(self, run: Run, column: str) -> Any:
        if column == "Run":
            return run.id
        if column == "Epochs":
            return run.epochs_done
        if column == "Duration":
            return fmt.live_duration(run) or 0.0
        if column == "Best":
            top = fmt.headline(run)
            return top[1] if top else float("-inf")
        if column == "Gain vs strong":
            gain = strong_baseline.gain(run.evaluation)
            return float("-inf") if gain is None else gain
        if column == "ε":
            epsilon = fmt.epsilon(run)
            return float("inf") if epsilon is None else epsilon  # not private: least private
        return self._text(run, column)

    def _decoration(self, run: Run, column: str, role: int) -> Any:
        stale = run.id in self.stale
        if role == Qt.ItemDataRole.ForegroundRole and column == "Status":
            return QColor(fmt.status_color(run, stale))
        if role == Qt.ItemDataRole.FontRole and column == "Status":
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == "ε":
                return fmt.privacy_tooltip(run)
            return fmt.gain_tooltip(run) if column == "Gain vs strong" else _tooltip(run, stale)
        if role == Qt.ItemDataRole.ForegroundRole and column == "Gain vs strong":
            gain = strong_baseline.gain(run.evaluation)
            return None if gain is None else QColor(fmt.gain_color(gain))
        aligned = ("Run", "Epochs", "Duration", "Gain vs strong")
        if role == Qt.ItemDataRole.TextAlignmentRole and column in aligned:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


def _model_text(model: ModelVersion | None) -> str:
    if model is None:
        return ""
    aliases = f" ({', '.join(model.aliases)})" if model.aliases else ""
    return model.ref + aliases


def _tooltip(run: Run, stale: bool) -> str:
    if stale:
        return (
            "Its worker stopped reporting (closed or crashed). "
            "Resume continues from the last checkpoint."
        )
    if run.status == "interrupted":
        return f"Interrupted: {run.error or 'the worker stopped'}. Resume continues it."
    if run.status == "failed":
        return f"Failed: {run.error or 'unknown error'}"
    return fmt.run_title(run)


class RunTable(QTableView):
    """The runs, several selectable at once, with a context menu of actions.

    Args:
        parent: the parent widget.
    """

    selectionChangedIds = Signal(list)  # run ids, in table order
    menuRequested = Signal(QMenu)  # the context menu, to fill with the tab's actions

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runs = RunTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.runs)
        self.proxy.setSortRole(SORT_ROLE)
        setup_sorted_table(
            self,
            self.proxy,
            Qt.SortOrder.DescendingOrder,
            QAbstractItemView.SelectionMode.ExtendedSelection,
            24,
        )
        for column, width in enumerate((48, 110, 56, 110, 70, 90, 190, 110)):
            self.setColumnWidth(column, width)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._on_menu)
        self.selectionModel().selectionChanged.connect(self._on_selection)

    def selected_ids(self) -> list[int]:
        """Ids of the selected runs, in table order."""
        rows = sorted(i.row() for i in self.selectionModel().selectedRows())
        return [self.proxy.index(r, 0).data(RUN_ROLE).id for r in rows]

    def select_ids(self, run_ids: Sequence[int]) -> None:
        """Select exactly these runs (those still in the table)."""
        selection = QItemSelection()
        for run_id in run_ids:
            row = self.runs.row_of(run_id)
            if row is not None:
                index = self.proxy.mapFromSource(self.runs.index(row, 0))
                selection.select(index, index)
        flags = (
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows
        )
        self.selectionModel().select(selection, flags)
        if not selection.isEmpty():
            self.scrollTo(selection.indexes()[0])

    def _on_selection(self, *args: object) -> None:
        self.selectionChangedIds.emit(self.selected_ids())

    def _on_menu(self, pos: QPoint) -> None:
        index = self.indexAt(pos)
        if index.isValid() and index.row() not in {
            i.row() for i in self.selectionModel().selectedRows()
        }:
            self.selectRow(index.row())
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.menuRequested.emit(menu)
        if not menu.isEmpty():
            menu.popup(self.viewport().mapToGlobal(pos))
