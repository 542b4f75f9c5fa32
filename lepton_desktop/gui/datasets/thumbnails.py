"""A lazily loaded thumbnail grid of an image dataset, and its class counts.

Thumbnails are fetched a page at a time: the encoded bytes and labels come from the
DB thread, are decoded and scaled to QImages on the background pool (QImage, unlike
QPixmap, may be used off the GUI thread), and only become pixmaps here.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QListView, QSplitter, QWidget

from lepton_desktop.core.entities import DatasetVersion
from lepton_desktop.core.project import Project
from lepton_desktop.gui.widgets.charts import BarChart

if TYPE_CHECKING:
    from lepton_desktop.gui.session import ProjectSession

THUMB = 64
PAGE = 64
MAX_PAGES = 40
_Index = QModelIndex | QPersistentModelIndex
_Thumb = tuple[str, QPixmap | None]


def label_column(version: DatasetVersion) -> int | None:
    """Position of the class column (``label``, else the target), or None."""
    names = [c.name for c in version.columns]
    for name in ("label", version.target):
        if name in names:
            return names.index(name)
    return None


def fetch_page(project: Project, version: DatasetVersion, start: int) -> list[tuple[str, bytes]]:
    """DB thread: (label, encoded image) of rows ``start .. start + PAGE - 1``."""
    rows = project.rows(version, start, PAGE)
    position = label_column(version)
    labels = [str(r[position]) if position is not None else "" for r in rows]
    return [(label, project.image(version, start + i)) for i, label in enumerate(labels)]


def decode(items: list[tuple[str, bytes]]) -> list[tuple[str, QImage]]:
    """Background pool: decode and scale to thumbnails (pixel art stays sharp)."""
    out = []
    for label, data in items:
        image = QImage.fromData(data)
        if not image.isNull():
            small = image.width() < THUMB and image.height() < THUMB
            mode = Qt.TransformationMode.FastTransformation if small else \
                Qt.TransformationMode.SmoothTransformation
            image = image.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, mode)
        out.append((label, image))
    return out


class ThumbnailModel(QAbstractListModel):
    """One item per row of an image version: its thumbnail, with its label below."""

    pageLoaded = Signal(int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._session: ProjectSession | None = None
        self._version: DatasetVersion | None = None
        self._pages: collections.OrderedDict[int, list[_Thumb]] = collections.OrderedDict()
        self._pending: set[int] = set()
        self._generation = 0
        self._placeholder: QPixmap | None = None

    def set_version(self, session: ProjectSession | None, version: DatasetVersion | None) -> None:
        """Show the images of ``version``."""
        self.beginResetModel()
        self._session, self._version = session, version
        self._generation += 1
        self._pages.clear()
        self._pending.clear()
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        """The version's row count."""
        return 0 if parent.isValid() or self._version is None else self._version.n_rows

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """The label (display) and thumbnail (decoration) of one row."""
        if not index.isValid() or self._version is None:
            return None
        if role == Qt.ItemDataRole.SizeHintRole:
            # Fixed: with uniform sizes the view measures one item, maybe a placeholder.
            return QSize(THUMB + 24, THUMB + 26)
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.DecorationRole,
                        Qt.ItemDataRole.ToolTipRole):
            return None
        item = self._item(index.row())
        if role == Qt.ItemDataRole.DecorationRole:
            return item[1] if item and item[1] is not None else self._blank()
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"Row {index.row() + 1:,}: {item[0]}" if item else None
        return item[0] if item else "…"

    def _blank(self) -> QPixmap:
        if self._placeholder is None:
            self._placeholder = QPixmap(THUMB, THUMB)
            self._placeholder.fill(Qt.GlobalColor.transparent)
        return self._placeholder

    def is_loaded(self, row: int) -> bool:
        """True when the thumbnail of ``row`` is ready."""
        return row // PAGE in self._pages

    def _item(self, row: int) -> _Thumb | None:
        page = self._pages.get(row // PAGE)
        if page is None:
            self._request(row // PAGE)
            return None
        self._pages.move_to_end(row // PAGE)
        return page[row % PAGE] if row % PAGE < len(page) else None

    def _request(self, page: int) -> None:
        if page in self._pending or self._session is None:
            return
        self._pending.add(page)
        session, version, generation = self._session, self._version, self._generation
        session.query(
            lambda p: fetch_page(p, version, page * PAGE),  # type: ignore[arg-type]
            lambda items: session.background(
                lambda: decode(items), lambda thumbs: self._store(generation, page, thumbs),
                owner=self,
            ),
            lambda exc: self._pending.discard(page),
            owner=self,
        )

    def _store(self, generation: int, page: int, thumbs: list[tuple[str, QImage]]) -> None:
        if generation != self._generation:
            return
        self._pending.discard(page)
        self._pages[page] = [(label, QPixmap.fromImage(img)) for label, img in thumbs]
        while len(self._pages) > MAX_PAGES:
            self._pages.popitem(last=False)
        first = page * PAGE
        last = min(first + PAGE, self.rowCount()) - 1
        if last >= first:
            self.dataChanged.emit(self.index(first), self.index(last))
        self.pageLoaded.emit(page)


class ImagesPanel(QSplitter):
    """The thumbnail grid beside a bar chart of images per class.

    Args:
        parent: the parent widget.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self._session: ProjectSession | None = None
        self._version: DatasetVersion | None = None
        self.model = ThumbnailModel(self)
        self.grid = QListView(self)
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setIconSize(QSize(THUMB, THUMB))
        self.grid.setGridSize(QSize(THUMB + 28, THUMB + 30))
        self.grid.setSpacing(4)
        self.grid.setWordWrap(False)
        self.grid.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.grid.setUniformItemSizes(True)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setLayoutMode(QListView.LayoutMode.Batched)
        self.grid.setBatchSize(500)
        self.grid.setModel(self.model)
        self.chart = BarChart(self, "Images per class")
        self.addWidget(self.grid)
        self.addWidget(self.chart)
        self.setStretchFactor(0, 3)
        self.setStretchFactor(1, 2)
        self.counts: dict[str, int] = {}

    def set_version(self, session: ProjectSession | None, version: DatasetVersion | None) -> None:
        """Show the thumbnails and class counts of ``version``."""
        self._session, self._version = session, version
        self.model.set_version(session, version)
        self.chart.clear_bars()
        position = label_column(version) if version is not None else None
        if session is None or version is None or position is None:
            return
        name = version.columns[position].name
        session.query(
            lambda p: p.label_counts(version, name),
            lambda counts: self._on_counts(version, counts),
            owner=self,
        )

    def _on_counts(self, version: DatasetVersion, counts: dict[str, int]) -> None:
        if version is not self._version:
            return
        self.counts = counts
        self.chart.show_counts(list(counts), list(counts.values()))
