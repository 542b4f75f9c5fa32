"""Partial dependence with ICE lines for one of a run's top columns, picked in a combo.

The curves were computed by the training worker (``core/training/dependence.py``) and
stored with the run; this only draws them: thin translucent ICE lines (one test row
each, the column varied) under the thick partial-dependence line (their mean), or, for
a categorical (one-hot) column, one bar per category (the average with that category).
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from lepton_desktop.gui.widgets.charts import SERIES_COLORS, ThemedPlot

_ICE_ALPHA = 60
#: The average in a colour of its own, readable over the ICE lines in both themes.
_AVERAGE_COLOR = SERIES_COLORS[1]


class DependenceChart(QWidget):
    """A column picker, an output (class) picker and the plot: ICE lines in the accent
    colour, the partial dependence (their mean) thick in orange.

    Args:
        parent: the parent widget.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.dependence: dict[str, Any] = {}
        self.column = QComboBox(self)
        self.column.setObjectName("dependenceColumn")
        self.column.setToolTip("The column varied (the most important ones)")
        self.output = QComboBox(self)
        self.output.setObjectName("dependenceOutput")
        self.output.setToolTip("The class whose probability is drawn")
        self.plot = ThemedPlot(self, "Partial dependence and ICE (test split)")
        self.plot.getPlotItem().showGrid(x=True, y=True, alpha=0.15)
        self.plot.getPlotItem().setMouseEnabled(x=False, y=False)
        self.plot.getPlotItem().getAxis("left").enableAutoSIPrefix(False)  # probabilities
        self.ice_items: list[pg.PlotDataItem] = []
        self.bars: pg.BarGraphItem | None = None
        self.average_item = self.plot.getPlotItem().plot([], [])
        pickers = QHBoxLayout()
        pickers.setContentsMargins(0, 0, 0, 0)
        pickers.addWidget(QLabel("Column", self))
        pickers.addWidget(self.column, 1)
        self.output_label = QLabel("Class", self)
        pickers.addWidget(self.output_label)
        pickers.addWidget(self.output, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(pickers)
        layout.addWidget(self.plot, 1)
        self.column.currentIndexChanged.connect(self._draw)
        self.output.currentIndexChanged.connect(self._draw)

    def show_dependence(self, dependence: dict[str, Any]) -> None:
        """Fill the pickers from the stored curves and draw the first column."""
        self.dependence = dependence
        for combo, items in (
            (self.column, [c["column"] for c in dependence.get("columns", [])]),
            (self.output, list(dependence.get("outputs", []))),
        ):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(items)
            combo.blockSignals(False)
        several = len(dependence.get("outputs", [])) > 1
        self.output.setVisible(several)
        self.output_label.setVisible(several)
        self._draw()

    def _draw(self) -> None:
        columns = self.dependence.get("columns", [])
        index, output = self.column.currentIndex(), max(self.output.currentIndex(), 0)
        item = self.plot.getPlotItem()
        for line in self.ice_items:
            item.removeItem(line)
        self.ice_items = []
        if self.bars is not None:
            item.removeItem(self.bars)
            self.bars = None
        item.getAxis("bottom").setTicks(None)
        if not 0 <= index < len(columns):
            self.average_item.setData([], [])
            return
        column = columns[index]
        if column.get("categorical"):
            self._draw_bars(column, output)
        else:
            self._draw_lines(column, output)
        self._label(column, output)
        item.enableAutoRange()

    def _draw_bars(self, column: dict[str, Any], output: int) -> None:
        """One bar per category: the average prediction with every row set to it."""
        self.average_item.setData([], [])
        heights = column["average"][output]
        self.bars = pg.BarGraphItem(x=list(range(len(heights))), height=heights, width=0.6,
                                    brush=_AVERAGE_COLOR, pen=pg.mkPen(None))  # fmt: skip
        item = self.plot.getPlotItem()
        item.addItem(self.bars)
        item.getAxis("bottom").setTicks([list(enumerate(str(c) for c in column["grid"]))])

    def _draw_lines(self, column: dict[str, Any], output: int) -> None:
        """ICE lines under their average."""
        item = self.plot.getPlotItem()
        accent = self.plot.accent()
        faint = QColor(accent)
        faint.setAlpha(_ICE_ALPHA)
        for line in column["ice"][output]:
            self.ice_items.append(item.plot(column["grid"], line, pen=pg.mkPen(faint, width=1)))
        self.average_item.setData(column["grid"], column["average"][output])
        self.average_item.setPen(pg.mkPen(_AVERAGE_COLOR, width=3))
        self.average_item.setZValue(10)

    def _label(self, column: dict[str, Any], output: int) -> None:
        item = self.plot.getPlotItem()
        names = self.dependence.get("outputs", [])
        kind = self.dependence.get("kind", "prediction")
        if kind == "probability":
            label = f"P({names[output]})" if names else kind
        else:
            label = f"{names[0]} (predicted)" if names else kind
        item.setLabel("left", label)
        item.setLabel("bottom", column["column"])

    @property
    def line_count(self) -> int:
        """ICE lines drawn now (for tests)."""
        return len(self.ice_items)
