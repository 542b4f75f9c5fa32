"""Charts of a finished run's evaluation: confusion matrix, per-class and importance bars,
predicted-vs-true scatter. Each keeps its plot items and restyles with the palette."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QPalette
from PySide6.QtWidgets import QWidget

from lepton_desktop.gui.widgets.charts import SERIES_COLORS, ThemedPlot

_PER_CLASS = (("precision", "precision"), ("recall", "recall"), ("f1", "F1"))
_MAX_TICKS = 20
_TICK_CHARS = 14


def category_ticks(labels: Sequence[str], offset: float = 0.0) -> list[tuple[float, str]]:
    """Ticks at ``i + offset`` for each label, thinned and shortened to stay legible."""
    step = max(1, -(-len(labels) // _MAX_TICKS))
    return [
        (i + offset, label if len(label) <= _TICK_CHARS else label[: _TICK_CHARS - 1] + "…")
        for i, label in enumerate(labels)
        if i % step == 0
    ]


def fit_left_axis(plot: ThemedPlot, labels: Sequence[str]) -> None:
    """Widen the left axis so that category labels are drawn, not dropped."""
    metrics = QFontMetrics(plot.font())
    widest = max((metrics.horizontalAdvance(label) for _, label in category_ticks(labels)),
                 default=20)
    plot.getPlotItem().getAxis("left").setWidth(widest + 28)


class ConfusionMatrixChart(ThemedPlot):
    """A heat map of counts (rows: true class, columns: predicted) with the counts drawn.

    Args:
        parent: the parent widget.
    """

    #: A cell was clicked: its true class and predicted class.
    cellClicked = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, "Confusion matrix (test split)")
        self.classes: list[str] = []
        self.image = pg.ImageItem()
        self.addItem(self.image)
        self.labels: list[pg.TextItem] = []
        self.matrix = np.zeros((0, 0), dtype=int)
        item = self.getPlotItem()
        item.invertY(True)
        item.setAspectLocked(False)
        item.setMouseEnabled(x=False, y=False)
        item.setLabel("bottom", "predicted")
        item.setLabel("left", "true")
        self.scene().sigMouseClicked.connect(self._on_clicked)
        self.apply_palette()

    def _on_clicked(self, event: Any) -> None:
        """A click on a cell emits :attr:`cellClicked` (its true and predicted class)."""
        point = self.getPlotItem().vb.mapSceneToView(event.scenePos())
        column, row = int(np.floor(point.x())), int(np.floor(point.y()))
        n = len(self.classes)
        if 0 <= row < n and 0 <= column < n:
            self.cellClicked.emit(self.classes[row], self.classes[column])

    def show_matrix(self, matrix: Sequence[Sequence[int]], classes: Sequence[str]) -> None:
        """Draw ``matrix`` (true × predicted counts) labelled by ``classes``."""
        self.classes = [str(c) for c in classes]
        self.matrix = np.asarray(matrix, dtype=int).reshape(len(classes), len(classes))
        # ImageItem's first axis is x: transpose so that columns are predictions.
        self.image.setImage(self.matrix.T.astype(float), autoLevels=False,
                            levels=(0, max(1, int(self.matrix.max(initial=0)))))
        ticks = category_ticks(classes, 0.5)
        for name in ("bottom", "left"):
            self.getPlotItem().getAxis(name).setTicks([ticks])
        fit_left_axis(self, classes)
        self._draw_counts()
        n = len(classes)
        self.getPlotItem().setRange(xRange=(0, max(n, 1)), yRange=(0, max(n, 1)), padding=0)

    def apply_palette(self) -> None:
        """Colour map from the background to the accent; counts readable on both."""
        super().apply_palette()
        if not hasattr(self, "image"):
            return
        base = self.palette().color(QPalette.ColorRole.Base)
        cmap = pg.ColorMap([0.0, 1.0], [base, self.accent()])
        self.image.setColorMap(cmap)
        self._draw_counts()

    def _draw_counts(self) -> None:
        for label in self.labels:
            self.removeItem(label)
        self.labels = []
        top = max(1, int(self.matrix.max(initial=0)))
        text = self.palette().color(QPalette.ColorRole.Text)
        for (row, column), count in np.ndenumerate(self.matrix):
            color = QColor("#ffffff") if count > top / 2 else text
            label = pg.TextItem(str(count), color=color, anchor=(0.5, 0.5))
            label.setPos(column + 0.5, row + 0.5)
            self.addItem(label)
            self.labels.append(label)


class GroupedBarChart(ThemedPlot):
    """Precision, recall and F1 per class, side by side, on a 0..1 axis.

    Args:
        parent: the parent widget.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, "Per class (test split)")
        item = self.getPlotItem()
        self._legend = item.addLegend(offset=(-8, 4), labelTextSize="8pt", colCount=3)
        self.bars = []
        for i, _ in enumerate(_PER_CLASS):
            color = SERIES_COLORS[i]
            bar = pg.BarGraphItem(x=[], height=[], width=0.26, brush=color, pen=pg.mkPen(color))
            item.addItem(bar)
            self.bars.append(bar)
        item.showGrid(y=True, alpha=0.15)
        item.setMouseEnabled(x=False, y=False)
        self.n_classes = 0
        self.apply_palette()

    def show_classes(self, per_class: dict[str, dict[str, float]]) -> None:
        """Draw three bars per class."""
        names = list(per_class)
        self.n_classes = len(names)
        x = np.arange(len(names), dtype=float)
        for i, ((key, _label), bar) in enumerate(zip(_PER_CLASS, self.bars, strict=True)):
            heights = [float(per_class[n].get(key, 0.0)) for n in names]
            bar.setOpts(x=x + (i - 1) * 0.28, height=heights)
        self.getPlotItem().getAxis("bottom").setTicks([category_ticks(names)])
        # Headroom above 1 for the legend.
        self.getPlotItem().setRange(xRange=(-0.6, max(len(names), 1) - 0.4), yRange=(0, 1.3),
                                    padding=0)

    def apply_palette(self) -> None:
        """Restyle axes and the legend (its labels take the colour when added)."""
        super().apply_palette()
        if hasattr(self, "bars"):
            self._legend.clear()
            self._legend.setLabelTextColor(self.palette().color(QPalette.ColorRole.Text))
            for (_key, label), bar in zip(_PER_CLASS, self.bars, strict=True):
                self._legend.addItem(bar, label)


class ImportanceChart(ThemedPlot):
    """Horizontal bars: how much the test metric drops when a column is shuffled.

    Args:
        parent: the parent widget.
    """

    MAX_BARS = 20

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, "Permutation importance (drop in test score)")
        self.bars = pg.BarGraphItem(x0=[], y=[], width=[], height=0.7)
        self.addItem(self.bars)
        item = self.getPlotItem()
        item.invertY(True)
        item.setMouseEnabled(x=False, y=False)
        self.columns: list[str] = []
        self.apply_palette()

    def show_importance(self, drops: dict[str, float]) -> None:
        """Draw the most important columns first (top), at most :attr:`MAX_BARS`."""
        ranked = sorted(drops.items(), key=lambda item: -item[1])[: self.MAX_BARS]
        self.columns = [name for name, _ in ranked]
        values = np.array([v for _, v in ranked], dtype=float)
        y = np.arange(len(values), dtype=float)
        self.bars.setOpts(x0=np.minimum(values, 0), y=y, width=np.abs(values), height=0.7)
        self.getPlotItem().getAxis("left").setTicks([category_ticks(self.columns)])
        fit_left_axis(self, self.columns)
        self.getPlotItem().enableAutoRange()

    def apply_palette(self) -> None:
        """Bars in the accent colour."""
        super().apply_palette()
        if hasattr(self, "bars"):
            self.bars.setOpts(brush=self.accent(), pen=pg.mkPen(self.accent().darker(130)))


class ScatterChart(ThemedPlot):
    """Predicted against true values, with the y = x line a perfect model would follow.

    Args:
        parent: the parent widget.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, "Predicted vs true (test split)")
        item = self.getPlotItem()
        dashed = pg.mkPen("#8a8f98", width=1, style=Qt.PenStyle.DashLine)
        self.diagonal = item.plot([], [], pen=dashed)
        self.points = pg.ScatterPlotItem(size=6, pen=None)
        item.addItem(self.points)
        item.showGrid(x=True, y=True, alpha=0.15)
        item.setLabel("bottom", "true")
        item.setLabel("left", "predicted")
        self.apply_palette()

    def show_points(self, true: Sequence[float], pred: Sequence[float]) -> None:
        """Draw the pairs and the diagonal over their range."""
        x, y = np.asarray(true, dtype=float), np.asarray(pred, dtype=float)
        self.points.setData(x=x, y=y)
        if len(x):
            lo = float(min(x.min(), y.min()))
            hi = float(max(x.max(), y.max()))
            self.diagonal.setData([lo, hi], [lo, hi])
        self.getPlotItem().enableAutoRange()

    def apply_palette(self) -> None:
        """Points in the accent colour, half transparent."""
        super().apply_palette()
        if hasattr(self, "points"):
            color = QColor(self.accent())
            color.setAlpha(150)
            self.points.setBrush(pg.mkBrush(color))
