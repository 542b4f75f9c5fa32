"""What the GUI's flat tables share: a model base with titled columns, and the view setup.

The runs, trials and request-log tables are lists of rows under column titles; their
models differ only in what a row holds and how a cell reads, so the row and column
counts and the header come from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView

Index = QModelIndex | QPersistentModelIndex


class FlatTableModel(QAbstractTableModel):
    """A table of rows (no children) under column titles.

    Subclasses implement :meth:`row_total` and :meth:`column_titles`, and ``data``.
    """

    def row_total(self) -> int:
        """How many rows are shown.

        Abstract hook: subclasses implement it.
        """
        raise NotImplementedError

    def column_titles(self) -> Sequence[str]:
        """The columns' titles, left to right.

        Abstract hook: subclasses implement it.
        """
        raise NotImplementedError

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        """See :meth:`row_total`."""
        return 0 if parent.isValid() else self.row_total()

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        """See :meth:`column_titles`."""
        return 0 if parent.isValid() else len(self.column_titles())

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        """Column titles across."""
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.column_titles()[section]
        return None


def setup_row_table(
    table: QTableView, mode: QAbstractItemView.SelectionMode, row_height: int
) -> None:
    """Select whole rows in ``mode``; alternate colours, no wrapping, no row numbers."""
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(mode)
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)
    table.verticalHeader().hide()
    table.verticalHeader().setDefaultSectionSize(row_height)


def setup_sorted_table(
    table: QTableView,
    model: QAbstractItemModel,
    order: Qt.SortOrder,
    mode: QAbstractItemView.SelectionMode,
    row_height: int,
) -> None:
    """Show ``model`` sorted by its first column in ``order``.

    Rows are set up as in :func:`setup_row_table`; columns resize by hand, the last
    one stretched.
    """
    table.setModel(model)
    table.setSortingEnabled(True)
    table.sortByColumn(0, order)
    setup_row_table(table, mode, row_height)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(True)
