"""Per-column statistics of a version, and a histogram of the selected column."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QItemSelection, QObject, Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QSplitter, QTableView, QWidget

from lepton_desktop.core.entities import Column, DatasetVersion, Histogram
from lepton_desktop.gui.widgets.charts import BarChart
from lepton_desktop.gui.widgets.table_model import FlatTableModel, Index

if TYPE_CHECKING:
    from lepton_desktop.gui.session import ProjectSession

HEADERS = ("Column", "Type", "Missing", "Unique", "Mean", "Std", "Min", "Max")
_STAT_KEYS = (None, None, "missing", "unique", "mean", "std", "min", "max")


def format_stat(key: str | None, value: Any) -> str:
    """How one statistic is shown (``unique`` None means the count stopped at 10,000)."""
    if key == "unique" and value is None:
        return "10,000+"
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


class ColumnStatsModel(FlatTableModel):
    """One row per column: name, type, missing, unique, mean, std, min, max."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._columns: tuple[Column, ...] = ()
        self._target: str | None = None

    def set_version(self, version: DatasetVersion | None) -> None:
        """Show the columns of ``version``."""
        self.beginResetModel()
        self._columns = version.columns if version else ()
        self._target = version.target if version else None
        self.endResetModel()

    def column_at(self, row: int) -> Column:
        """The column shown in ``row``."""
        return self._columns[row]

    def row_total(self) -> int:
        """Number of columns of the version."""
        return len(self._columns)

    def column_titles(self) -> Sequence[str]:
        """Statistic names across."""
        return HEADERS

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """A statistic's text, right-aligned numbers, the target column in bold."""
        if not index.isValid():
            return None
        column = self._columns[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(column, index.column())
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() >= 2:
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        if role == Qt.ItemDataRole.ToolTipRole and column.name == self._target:
            return "The target column (what a model learns to predict)"
        if role == Qt.ItemDataRole.FontRole and column.name == self._target:
            font = QFont()
            font.setBold(True)
            return font
        return None

    @staticmethod
    def _text(column: Column, section: int) -> str:
        if section == 0:
            return column.name
        if section == 1:
            return column.dtype
        key = _STAT_KEYS[section]
        if key not in column.stats and key != "unique":
            return ""
        return format_stat(key, column.stats.get(key))


class ColumnsPanel(QSplitter):
    """The statistics table above a histogram of the selected column.

    Args:
        parent: the parent widget.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Vertical, parent)
        self._session: ProjectSession | None = None
        self._version: DatasetVersion | None = None
        self.model = ColumnStatsModel(self)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setMinimumSectionSize(70)
        self.table.setToolTip("Select a column to see its histogram")
        self.table.selectionModel().selectionChanged.connect(self._on_selection_changed)
        self.chart = BarChart(self)
        self.addWidget(self.table)
        self.addWidget(self.chart)
        self.setStretchFactor(0, 2)
        self.setStretchFactor(1, 3)
        self.histogram: Histogram | None = None

    def set_version(self, session: ProjectSession | None, version: DatasetVersion | None) -> None:
        """Show ``version``'s columns and the histogram of its target (or first) column."""
        self._session, self._version = session, version
        self.model.set_version(version)
        self.chart.clear_bars()
        self.chart.set_title("")
        if version is None or not version.columns:
            return
        names = [c.name for c in version.columns]
        row = names.index(version.target) if version.target in names else 0
        self.table.selectRow(row)

    def _on_selection_changed(self, selected: QItemSelection, deselected: QItemSelection) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows and self._session is not None and self._version is not None:
            self._show_histogram(self.model.column_at(rows[0].row()).name)

    def _show_histogram(self, name: str) -> None:
        version = self._version
        self.chart.set_title(f"{name}: distribution")
        self._session.query(  # type: ignore[union-attr]
            lambda p: p.histogram(version, name),
            lambda hist: self._on_histogram(version, name, hist),
            owner=self,
        )

    def _on_histogram(self, version: DatasetVersion | None, name: str, hist: Histogram) -> None:
        if version is not self._version:
            return  # another version was selected meanwhile
        self.histogram = hist
        kind = "histogram" if hist.edges is not None else "most common values"
        self.chart.set_title(f"{name}: {kind}")
        self.chart.show_counts(hist.labels, hist.counts, hist.edges)
