"""A table model over a dataset version of any size, fetched a page at a time.

``rowCount`` is the version's row count, but rows are only read when the view asks
for them: a page (256 rows) is requested through the session (a rowid range scan,
as fast at row 900,000 as at row 0), a placeholder is shown meanwhile, and
``dataChanged`` repaints the rows when the page arrives. A bounded LRU keeps recent
pages; requests are served newest first and old ones are dropped, so dragging the
scroll bar across a million rows never builds a queue of pages nobody looks at.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication

from lepton_desktop.core.entities import SPLIT_NAMES, DatasetVersion

if TYPE_CHECKING:
    from lepton_desktop.gui.session import ProjectSession

PAGE_ROWS = 256
MAX_PAGES = 64
MAX_QUEUED = 8
MAX_IN_FLIGHT = 2
PLACEHOLDER = "…"
MISSING = "—"
_Index = QModelIndex | QPersistentModelIndex
# Plain ints: ``data`` runs for every visible cell and role on each repaint, and
# comparing or combining Qt's Python enums there shows up in profiles.
_DISPLAY = Qt.ItemDataRole.DisplayRole.value
_ALIGNMENT = Qt.ItemDataRole.TextAlignmentRole.value
_FOREGROUND = Qt.ItemDataRole.ForegroundRole.value
_VERTICAL = Qt.Orientation.Vertical
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
_Page = list[tuple[Any, ...]]


def format_value(value: Any) -> str:
    """How a cell value is shown (floats to 6 significant digits, missing as a dash)."""
    if value is None:
        return MISSING
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, bytes):
        return f"<{len(value):,} bytes>"
    return str(value)


class PreviewModel(QAbstractTableModel):
    """Rows of one dataset version, read lazily by page.

    Args:
        parent: the owning QObject.
    """

    pageRequested = Signal(int)  # page number (for diagnostics and tests)
    pageLoaded = Signal(int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._session: ProjectSession | None = None
        self._version: DatasetVersion | None = None
        self._pages: collections.OrderedDict[int, _Page] = collections.OrderedDict()
        self._queue: list[int] = []  # waiting pages, newest last
        self._pending: set[int] = set()  # queued or in flight
        self._in_flight = 0
        self._generation = 0
        self._alignments: list[Qt.AlignmentFlag] = []
        self.pages_requested = 0

    @property
    def version(self) -> DatasetVersion | None:
        """The version shown."""
        return self._version

    def set_version(self, session: ProjectSession | None, version: DatasetVersion | None) -> None:
        """Show ``version`` (or nothing); cached pages are dropped.

        The first page is read before the model switches, so the view paints the new
        rows once instead of a screen of placeholders first.
        """
        self._generation += 1
        if session is None or version is None or version.n_rows == 0:
            self._switch(session, version, None)
            return
        generation = self._generation
        self.pages_requested = 1
        self.pageRequested.emit(0)
        session.query(
            lambda p: p.rows(version, 0, PAGE_ROWS),
            lambda rows: self._switch(session, version, rows, generation),
            lambda exc: self._switch(session, version, None, generation),
            owner=self,
        )

    def _switch(
        self, session: ProjectSession | None, version: DatasetVersion | None,
        first_page: _Page | None, generation: int | None = None,
    ) -> None:
        if generation is not None and generation != self._generation:
            return  # another version was chosen meanwhile
        self.beginResetModel()
        self._session, self._version = session, version
        self._pages.clear()
        self._queue.clear()
        self._pending.clear()
        if first_page is not None:
            self._pages[0] = first_page
        columns = version.columns if version else ()
        self._alignments = [_RIGHT if c.dtype == "numeric" else _LEFT for c in columns] + [_LEFT]
        self.endResetModel()
        if first_page is not None:
            self.pageLoaded.emit(0)

    @property
    def has_split(self) -> bool:
        """True when the version is split into train/val/test (an extra column)."""
        return bool(self._version and self._version.splits)

    def is_loaded(self, row: int) -> bool:
        """True when the page holding ``row`` is in the cache."""
        return row // PAGE_ROWS in self._pages

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        """The version's row count (none of them is read here)."""
        return 0 if parent.isValid() or self._version is None else self._version.n_rows

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        """The version's columns, plus ``split`` when it has one."""
        if parent.isValid() or self._version is None:
            return 0
        return len(self._version.columns) + (1 if self.has_split else 0)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        """Column names across; 1-based row numbers down."""
        if role != _DISPLAY or self._version is None:
            return None
        if orientation == _VERTICAL:
            return f"{section + 1:,}"
        if section < len(self._version.columns):
            return self._version.columns[section].name
        return "split"

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """A cell: its text, a placeholder while its page loads, alignment, colour."""
        if role == _DISPLAY:
            return self._display(index.row(), index.column()) if self._version else None
        if role == _ALIGNMENT:
            return self._alignments[index.column()] if self._version else None
        if role == _FOREGROUND:
            return self._foreground(index.row(), index.column()) if self._version else None
        return None

    def _display(self, row: int, column: int) -> str:
        values = self._row(row)
        if values is None:
            return PLACEHOLDER
        if column == len(self._version.columns):  # type: ignore[union-attr]
            split = values[-1]
            return SPLIT_NAMES[split] if split is not None else MISSING
        return format_value(values[column])

    def _foreground(self, row: int, column: int) -> Any:
        page = self._pages.get(row // PAGE_ROWS)
        values = page[row % PAGE_ROWS] if page and row % PAGE_ROWS < len(page) else None
        if values is not None and (column >= len(values) - 1 or values[column] is not None):
            return None
        group = QPalette.ColorGroup.Disabled
        return QApplication.palette().color(group, QPalette.ColorRole.Text)

    def _row(self, row: int) -> tuple[Any, ...] | None:
        page_number = row // PAGE_ROWS
        page = self._pages.get(page_number)
        if page is None:
            self._want(page_number)
            return None
        self._pages.move_to_end(page_number)
        offset = row - page_number * PAGE_ROWS
        return page[offset] if offset < len(page) else None

    # -- fetching ----------------------------------------------------------------------

    def _want(self, page: int) -> None:
        if page in self._pending:
            if page in self._queue:  # seen again: serve it sooner
                self._queue.remove(page)
                self._queue.append(page)
            return
        self._pending.add(page)
        self._queue.append(page)
        if len(self._queue) > MAX_QUEUED:
            # Long scrolled past; if it is ever shown again it is asked for again.
            self._pending.discard(self._queue.pop(0))
        self._pump()

    def _pump(self) -> None:
        while self._queue and self._in_flight < MAX_IN_FLIGHT and self._session is not None:
            page = self._queue.pop()
            self._in_flight += 1
            self.pages_requested += 1
            self.pageRequested.emit(page)
            version, generation = self._version, self._generation
            start = page * PAGE_ROWS
            self._session.query(
                lambda p, v=version, s=start: p.rows(v, s, PAGE_ROWS),
                lambda rows, g=generation, n=page: self._on_page(g, n, rows),
                lambda exc, g=generation, n=page: self._on_page(g, n, None),
                owner=self,
            )

    def _on_page(self, generation: int, page: int, rows: list[tuple[Any, ...]] | None) -> None:
        self._in_flight -= 1
        if generation == self._generation:
            self._pending.discard(page)
            if rows is not None:
                self._store(page, rows)
        self._pump()

    def _store(self, page: int, rows: list[tuple[Any, ...]]) -> None:
        self._pages[page] = rows
        while len(self._pages) > MAX_PAGES:
            self._pages.popitem(last=False)
        first = page * PAGE_ROWS
        last = min(first + PAGE_ROWS, self.rowCount()) - 1
        if last >= first:
            self.dataChanged.emit(self.index(first, 0), self.index(last, self.columnCount() - 1))
        self.pageLoaded.emit(page)
