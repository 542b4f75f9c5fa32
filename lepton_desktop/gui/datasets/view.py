"""Everything about one dataset version: rows, columns, images or series."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop.core.datasets.pii_found import findings_of
from lepton_desktop.core.entities import SPLIT_NAMES, DatasetVersion
from lepton_desktop.gui.datasets.column_stats import ColumnsPanel
from lepton_desktop.gui.datasets.import_dialog import pii_warning
from lepton_desktop.gui.datasets.preview_model import PreviewModel
from lepton_desktop.gui.datasets.series_panel import SeriesPanel
from lepton_desktop.gui.datasets.thumbnails import ImagesPanel

if TYPE_CHECKING:
    from lepton_desktop.gui.session import ProjectSession

_MAX_COLUMN_WIDTH = 280
EMPTY_TEXT = "Select a dataset version on the left, or import data with Import… (Ctrl+I)."


def summary_html(version: DatasetVersion, parent_ref: str | None) -> str:
    """The one-paragraph description above the version's tabs."""
    parts = [
        f"<b>{html.escape(version.name)}</b> version {version.version}",
        version.kind,
        f"{version.n_rows:,} rows × {len(version.columns)} columns",
    ]
    if version.target:
        parts.append(f"target <i>{html.escape(version.target)}</i>")
    if version.time_column:
        parts.append(f"time <i>{html.escape(version.time_column)}</i>")
    if version.splits:
        counts = " / ".join(f"{version.splits.get(n, 0):,}" for n in SPLIT_NAMES)
        parts.append(f"split {counts} (train / val / test)")
    ops = [op.get("op", "?") for op in version.operations if op.get("op") != "import"]
    if parent_ref:
        parts.append(f"from {html.escape(parent_ref)}" + (f" ({', '.join(ops)})" if ops else ""))
    return " · ".join(parts)


class DatasetView(QWidget):
    """A version's summary and its Rows, Columns, Images and Series tabs (or a hint).

    Args:
        parent: the parent widget.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session: ProjectSession | None = None
        self.version: DatasetVersion | None = None
        self._sized = False
        self._fit_when_shown = False
        self.summary = QLabel(EMPTY_TEXT, self)
        self.summary.setObjectName("datasetSummary")
        self.summary.setWordWrap(True)
        self.pii_note = QLabel(self)
        self.pii_note.setObjectName("piiWarning")
        self.pii_note.setWordWrap(True)
        self.pii_note.hide()
        self.preview = PreviewModel(self)
        self.table = self._make_table()
        self.columns_panel = ColumnsPanel(self)
        self.images_panel = ImagesPanel(self)
        self.series_panel = SeriesPanel(self)
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.table, "Rows")
        self.tabs.addTab(self.columns_panel, "Columns")
        self.tabs.addTab(self.images_panel, "Images")
        self.tabs.addTab(self.series_panel, "Series")
        self.tabs.setTabToolTip(0, "Every row, read from the project file as you scroll")
        self.tabs.setTabToolTip(1, "Statistics per column, and the selected column's distribution")
        self.tabs.setEnabled(False)
        self._panels = (self.columns_panel, self.images_panel, self.series_panel)
        self._loaded: set[int] = set()
        self.tabs.currentChanged.connect(lambda _: self._load_current_tab())
        self.tabs.currentChanged.connect(lambda _: self._fit_if_put_off())
        # One page, never swapped for an "empty" page: the widgets are laid out and
        # polished when the tab is first shown, not when the first import finishes.
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.pii_note)
        layout.addWidget(self.tabs, 1)
        self.preview.pageLoaded.connect(self._on_page_loaded)

    def _make_table(self) -> QTableView:
        table = QTableView(self)
        table.setModel(self.preview)
        table.setAlternatingRowColors(True)
        table.setWordWrap(False)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        rows = table.verticalHeader()
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # never measures 1M rows
        rows.setDefaultSectionSize(table.fontMetrics().height() + 8)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        # Fitting columns to their contents looks at the visible rows only (Qt's default
        # reads 1,000 rows, which would fetch pages nobody sees).
        table.horizontalHeader().setResizeContentsPrecision(0)
        table.horizontalHeader().setDefaultSectionSize(110)
        return table

    def set_version(
        self,
        session: ProjectSession | None,
        version: DatasetVersion | None,
        parent_ref: str | None = None,
    ) -> None:
        """Show ``version`` (None: the hint); the same version again changes nothing."""
        if session is self._session and _same(version, self.version):
            return
        self._session, self.version = session, version
        self._sized = False
        self.preview.set_version(session, version)
        self._loaded = set()
        for panel in self._panels:
            panel.set_version(None, None)
        self.tabs.setEnabled(version is not None)
        findings = findings_of(version.columns) if version is not None else []
        self.pii_note.setText(pii_warning(findings) if findings else "")
        self.pii_note.setVisible(bool(findings))
        if version is None:
            self.summary.setText(EMPTY_TEXT)
            return
        self.summary.setText(summary_html(version, parent_ref))
        self.tabs.setTabVisible(2, version.kind == "images")
        self.tabs.setTabVisible(3, version.kind == "timeseries")
        if not self.tabs.isTabVisible(self.tabs.currentIndex()):
            self.tabs.setCurrentIndex(0)
        self._load_current_tab()

    def _load_current_tab(self) -> None:
        # A panel reads its data (a histogram scans every row) only once it is shown.
        index = self.tabs.currentIndex()
        panel = self.tabs.widget(index)
        if self.version is None or index in self._loaded or panel not in self._panels:
            return
        self._loaded.add(index)
        panel.set_version(self._session, self.version)  # type: ignore[attr-defined]

    def _on_page_loaded(self, page: int) -> None:
        if page == 0 and not self._sized:
            self._sized = True
            # After the repaint, in its own turn of the event loop: no single long stall.
            QTimer.singleShot(0, self, self._fit_columns)

    def showEvent(self, event: QShowEvent) -> None:
        """Fit the columns put off while the view was hidden."""
        super().showEvent(event)
        self._fit_if_put_off()

    def _fit_if_put_off(self) -> None:
        if self._fit_when_shown:
            QTimer.singleShot(0, self, self._fit_columns)

    def _fit_columns(self) -> None:
        # From the rows on screen (never from all rows). A hidden table has no rows on
        # screen and Qt then measures every row (each one asking for its page): wait
        # until it is shown.
        self._fit_when_shown = not self.table.isVisible()
        if self.version is not None and not self._fit_when_shown:
            self.table.resizeColumnsToContents()
            header = self.table.horizontalHeader()
            for i in range(header.count()):
                header.resizeSection(i, min(max(header.sectionSize(i), 70), _MAX_COLUMN_WIDTH))


def _same(a: DatasetVersion | None, b: DatasetVersion | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and a.id == b.id)
