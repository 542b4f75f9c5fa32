"""The contour of two chosen hyperparameters: the mean objective per cell as an image,
the completed trials as dots, in the coordinates of ``param_charts.py``."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from lepton_desktop.core.tuning.reading import COMPLETE, ParamInfo
from lepton_desktop.core.tuning.study_view import StudyView
from lepton_desktop.gui.tuning.charts import GOLD, StudyChart
from lepton_desktop.gui.tuning.param_charts import (
    coord_range,
    coords,
    drawn,
    label_axis,
    param_axes,
)
from lepton_desktop.gui.tuning.plot_items import DotsItem, levels, value_colors

CONTOUR_BINS = 24


class ContourChart(QWidget):
    """Two chosen parameters: the mean objective per cell as an image, trials as dots."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.x_param, self.y_param = QComboBox(self), QComboBox(self)
        self.x_param.setAccessibleName("Contour x parameter")
        self.y_param.setAccessibleName("Contour y parameter")
        self.plot = _ContourPlot(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("x:", self))
        row.addWidget(self.x_param, 1)
        row.addWidget(QLabel("y:", self))
        row.addWidget(self.y_param, 1)
        caption = QLabel("cells: mean value (bright: best)", self)
        caption.setEnabled(False)
        row.addWidget(caption)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.plot, 1)
        self.x_param.currentTextChanged.connect(self._on_choice)
        self.y_param.currentTextChanged.connect(self._on_choice)

    def sync_params(self, names: list[str]) -> None:
        """Offer these parameters; keep the choice, default to the first two."""
        current = [self.x_param.itemText(i) for i in range(self.x_param.count())]
        if current == names:
            return
        for combo, default in ((self.x_param, 0), (self.y_param, 1)):
            chosen = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(names)
            index = names.index(chosen) if chosen in names else min(default, len(names) - 1)
            combo.setCurrentIndex(index)
            combo.blockSignals(False)
        self._on_choice()

    def _on_choice(self, *args: object) -> None:
        self.plot.params = (self.x_param.currentText(), self.y_param.currentText())
        self.plot.redraw()


class _ContourPlot(StudyChart):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, "Contour")
        param_axes(self, "bottom", "left")
        self.params = ("", "")
        self.image = pg.ImageItem()
        # White with a dark rim: visible on every colour of the map and on dark themes.
        self.dots = DotsItem(["#ffffff"], size=5, outline=QColor("#202020"))
        self.ring = pg.ScatterPlotItem(size=13, pen=pg.mkPen(GOLD, width=2), brush=None)
        for item in (self.image, self.dots, self.ring):
            self.addItem(item)
        self.grid = np.zeros((0, 0))
        self.points = (np.zeros(0), np.zeros(0))
        self.rows = np.zeros(0, dtype=np.int64)

    def reset(self) -> None:
        self.image.clear()
        self.dots.set_data(np.zeros(0), np.zeros(0))
        self.ring.setData([], [])

    def draw(self, view: StudyView) -> None:
        x_name, y_name = self.params
        if x_name not in view.params or y_name not in view.params:
            self.reset()
            return
        x_col, y_col = view.params[x_name], view.params[y_name]
        x, y = coords(x_col), coords(y_col)
        done = (view.states == COMPLETE) & np.isfinite(view.values[:, 0])
        keep = done & np.isfinite(x) & np.isfinite(y)
        self.rows = np.flatnonzero(keep)
        self.points = (x, y)
        x_range, y_range = coord_range(x_col.info), coord_range(y_col.info)
        self.grid = _binned_mean(
            x[keep],
            y[keep],
            view.values[keep, 0],
            x_range,
            y_range,
            _bins(x_col.info),
            _bins(y_col.info),
        )
        self.image.setImage(_rgba(self.grid, view.directions[0] == "minimize"), autoLevels=False)
        self.image.setRect(
            QRectF(x_range[0], y_range[0], x_range[1] - x_range[0], y_range[1] - y_range[0])
        )
        self.dots.set_data(x[keep], y[keep])
        self.pickable(self.dots, self.rows)
        label_axis(self.getPlotItem().getAxis("bottom"), x_col.info)
        label_axis(self.getPlotItem().getAxis("left"), y_col.info)
        self.set_title(f"Mean {view.objective_name(0)} by {x_name} and {y_name}")
        self.draw_selection(view, self.selected)

    def draw_selection(self, view: StudyView, row: int | None) -> None:
        if not drawn(self.rows, row):
            self.ring.setData([], [])
        else:
            self.ring.setData([self.points[0][row]], [self.points[1][row]])


def _bins(info: ParamInfo) -> int:
    return len(info.choices) if info.kind == "categorical" else CONTOUR_BINS


def _binned_mean(
    x: np.ndarray,
    y: np.ndarray,
    v: np.ndarray,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    nx: int,
    ny: int,
) -> np.ndarray:
    """Mean of ``v`` per cell of an nx x ny grid (NaN where no trial fell)."""

    def cell(values: np.ndarray, bounds: tuple[float, float], n: int) -> np.ndarray:
        span = (bounds[1] - bounds[0]) or 1.0
        return np.clip(((values - bounds[0]) / span * n).astype(np.int64), 0, n - 1)

    index = cell(x, x_range, nx) * ny + cell(y, y_range, ny)
    sums = np.bincount(index, weights=v, minlength=nx * ny)
    counts = np.bincount(index, minlength=nx * ny)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts).reshape(nx, ny)


def _rgba(grid: np.ndarray, lower_is_better: bool) -> np.ndarray:
    flat = grid.ravel()
    lut = np.array([c.getRgb() for c in value_colors()], dtype=np.ubyte)
    rgba = lut[levels(flat, reverse=lower_is_better)]
    rgba[~np.isfinite(flat), 3] = 0
    rgba[np.isfinite(flat), 3] = 210
    return rgba.reshape(*grid.shape, 4)
