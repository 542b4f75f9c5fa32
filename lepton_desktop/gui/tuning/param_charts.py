"""Hyperparameter charts: parallel coordinates and a slice per parameter.

Parameters are drawn in plot coordinates that suit their distribution: log10 of a
log-scale parameter (its axis labelled in powers of ten), a categorical parameter's
choice index (its axis labelled with the choices), the value itself otherwise.
Colours follow the objective (or the trial number in slices): bright is best.
The contour of two parameters (``contour_chart.py``) draws with the same coordinates.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from lepton_desktop.core.tuning.reading import COMPLETE, ParamInfo
from lepton_desktop.core.tuning.study_view import ParamColumn, StudyView
from lepton_desktop.gui.tuning.charts import GOLD, StudyChart, line_alpha, segments
from lepton_desktop.gui.tuning.plot_items import (
    N_LEVELS,
    DotsItem,
    ParamAxis,
    levels,
    value_color,
    value_colors,
)

#: Colour groups of the parallel-coordinates lines (one plot item each).
LINE_GROUPS = 8
#: Lines drawn at most: the best quarter of them, and an even sample of the others
#: (10,000 full-width lines cost ~40 ms to paint and show no more than 2,000 do).
PARALLEL_BUDGET = 2000
_JITTER = 0.12


def coords(column: ParamColumn) -> np.ndarray:
    """A parameter's values in plot coordinates (log10, choice index, or as is)."""
    values = column.values
    if column.info.log:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log10(np.where(values > 0, values, np.nan))
    return values


def coord_range(info: ParamInfo) -> tuple[float, float]:
    """The parameter's range in plot coordinates."""
    if info.kind == "categorical":
        return -0.5, len(info.choices) - 0.5
    if info.log and info.low > 0:
        return float(np.log10(info.low)), float(np.log10(info.high))
    return info.low, info.high


def label_axis(axis: pg.AxisItem, info: ParamInfo) -> None:
    """Choices as tick labels, numbers on log scales, whole numbers for ints."""
    if isinstance(axis, ParamAxis):
        axis.set_mode(info.kind, info.log, info.choices)
    axis.setLabel(info.name)


def param_axes(chart: StudyChart, *names: str) -> None:
    """Give the chart :class:`ParamAxis` items on these sides."""
    chart.getPlotItem().setAxisItems({name: ParamAxis(name) for name in names})
    chart.apply_palette()


def objective_levels(view: StudyView, values: np.ndarray, groups: int = N_LEVELS) -> np.ndarray:
    """Colour levels of objective values; the best values get the brightest colour."""
    return levels(values, groups, reverse=view.directions[0] == "minimize")


class ParallelChart(StudyChart):
    """One line per completed trial across the objective and every parameter's axis."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, "Parallel coordinates")
        item = self.getPlotItem()
        item.showGrid(x=False, y=False)
        item.hideAxis("left")
        item.getViewBox().setMouseEnabled(x=False, y=False)
        colors = value_colors(LINE_GROUPS)
        self.groups = [segments(pg.PlotDataItem(pen=pg.mkPen(c))) for c in colors]
        self.axes_lines = segments(pg.PlotDataItem())
        self.chosen = pg.PlotDataItem(pen=pg.mkPen(GOLD, width=3))
        for curve in (self.axes_lines, *self.groups, self.chosen):
            self.addItem(curve)
        self._labels: list[pg.TextItem] = []
        self.names: list[str] = []
        self.matrix = np.zeros((0, 0))
        self._value_range = (0.0, 1.0)
        self.rows = np.zeros(0, dtype=np.int64)
        self.apply_palette()

    def apply_palette(self) -> None:
        """Restyle the axis lines and the range labels."""
        super().apply_palette()
        if hasattr(self, "axes_lines"):
            text = self.palette().color(QPalette.ColorRole.Text)
            self.axes_lines.setPen(
                pg.mkPen(self.palette().color(QPalette.ColorRole.Mid), width=1.5)
            )
            for label in self._labels:
                label.setColor(text)

    def reset(self) -> None:
        """Clear the plot."""
        for curve in (*self.groups, self.chosen, self.axes_lines):
            curve.setData([], [])
        self._set_labels([])

    def draw(self, view: StudyView) -> None:
        """Normalise every axis to 0..1, one NaN-separated polyline per colour group."""
        done = (view.states == COMPLETE) & np.isfinite(view.values[:, 0])
        value = view.values[done, 0]
        self.names = [view.objective_name(0), *view.params]
        low, high = (float(np.nanmin(value)), float(np.nanmax(value))) if len(value) else (0, 1)
        group = objective_levels(view, value, LINE_GROUPS)
        drawn = _budget(objective_levels(view, value, len(value) or 1), PARALLEL_BUDGET)
        self.rows = np.flatnonzero(done)[drawn]
        columns = [self._normalise(view.params[n])[self.rows] for n in view.params]
        self._value_range = (low, high)
        span = high - low or 1.0
        self.matrix = np.column_stack([(value[drawn] - low) / span, *columns])
        self._draw_lines(group[drawn], len(value))
        self._draw_axes(view, (low, high))
        self.draw_selection(view, self.selected)

    def _draw_lines(self, group: np.ndarray, n_trials: int) -> None:
        alpha = line_alpha(len(group))
        for g, curve in enumerate(self.groups):
            x, y = _polylines(self.matrix[group == g])
            color = value_color(g / (LINE_GROUPS - 1))
            color.setAlpha(alpha)
            curve.setPen(pg.mkPen(color, width=1))
            curve.setData(x, y, connect="finite", skipFiniteCheck=True)
        shown = "" if len(group) == n_trials else f", {len(group):,} of {n_trials:,} trials"
        self.set_title(f"Parallel coordinates (bright: best{shown})")

    def _normalise(self, column: ParamColumn) -> np.ndarray:
        low, high = coord_range(column.info)
        return (coords(column) - low) / ((high - low) or 1.0)

    def _draw_axes(self, view: StudyView, value_range: tuple[float, float]) -> None:
        k = len(self.names)
        xs = np.repeat(np.arange(k, dtype=float), 3)
        ys = np.tile([0.0, 1.0, np.nan], k)
        self.axes_lines.setData(xs, ys, connect="finite")
        self.getPlotItem().getAxis("bottom").setTicks([list(enumerate(self.names))])
        texts = [(_fmt(value_range[0]), _fmt(value_range[1]))]
        for name in view.params:
            info = view.params[name].info
            if info.kind == "categorical":
                texts.append((info.choices[0], info.choices[-1]))
            else:
                texts.append((_fmt(info.low), _fmt(info.high)))
        self._set_labels(texts)
        self.getPlotItem().setRange(xRange=(-0.4, k - 0.6), yRange=(-0.13, 1.13), padding=0)

    def _set_labels(self, texts: list[tuple[str, str]]) -> None:
        # Labels are kept and only retexted: making a TextItem costs about 0.5 ms.
        wanted = 2 * len(texts)
        color = self.palette().color(QPalette.ColorRole.Text)
        while len(self._labels) < wanted:
            top = len(self._labels) % 2 == 1
            label = pg.TextItem("", color=color, anchor=(0.5, 1.1) if top else (0.5, -0.1))
            self.addItem(label)
            self._labels.append(label)
        for i, label in enumerate(self._labels):
            label.setVisible(i < wanted)
            if i < wanted:
                text = texts[i // 2][i % 2]
                if label.toPlainText() != text:
                    label.setText(text)
                label.setPos(i // 2, float(i % 2))

    def draw_selection(self, view: StudyView, row: int | None) -> None:
        """The selected trial's line, thick (drawn or not among the sampled lines)."""
        if (
            row is None
            or row >= view.n
            or not np.isfinite(view.values[row, 0])
            or view.states[row] != COMPLETE
        ):
            self.chosen.setData([], [])
            return
        low, high = self._value_range
        line = [(view.values[row, 0] - low) / (high - low or 1.0)]
        line += [self._normalise(view.params[n])[row] for n in view.params]
        x, y = _polylines(np.array([line]))
        self.chosen.setData(x, y, connect="finite")


def _budget(rank_levels: np.ndarray, budget: int) -> np.ndarray:
    """Indices to draw: all when within ``budget``; else the best quarter and a sample.

    ``rank_levels`` ranks the trials (0 worst .. n-1 best).
    """
    n = len(rank_levels)
    if n <= budget:
        return np.arange(n)
    order = np.argsort(-rank_levels, kind="stable")  # best first
    best = order[: budget // 4]
    rest = order[budget // 4 :]
    sample = rest[np.linspace(0, len(rest) - 1, budget - len(best)).astype(np.int64)]
    return np.sort(np.concatenate([best, sample]))


def _polylines(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``matrix`` as polylines over x = 0..k-1, NaN-separated."""
    n, k = matrix.shape
    if not n:
        return np.zeros(0), np.zeros(0)
    y = np.column_stack([matrix, np.full(n, np.nan)]).ravel()
    x = np.tile(np.r_[np.arange(k, dtype=float), np.nan], n)
    return x, y


def _fmt(value: float) -> str:
    return f"{value:.4g}"


class SliceChart(StudyChart):
    """One parameter against the objective; dots coloured by trial number (late: bright)."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent, name)
        self.name = name
        self.setMinimumHeight(140)
        param_axes(self, "bottom")
        self.dots = DotsItem(value_colors(), size=5)
        self.ring = pg.ScatterPlotItem(size=13, pen=pg.mkPen(GOLD, width=2), brush=None)
        self.addItem(self.dots)
        self.addItem(self.ring)
        self.rows = np.zeros(0, dtype=np.int64)
        self.x = np.zeros(0)

    def draw(self, view: StudyView) -> None:
        """Dots of the completed trials that drew this parameter."""
        column = view.params.get(self.name)
        if column is None:
            return
        done = (view.states == COMPLETE) & np.isfinite(view.values[:, 0])
        x = coords(column)
        if column.info.kind == "categorical":  # spread dots of one choice sideways
            x = x + _JITTER * np.sin(view.numbers.astype(float) * 12.9898)
        keep = done & np.isfinite(x)
        self.rows = np.flatnonzero(keep)
        self.x = x
        self.dots.set_data(x[keep], view.values[keep, 0], levels(view.numbers[keep].astype(float)))
        self.pickable(self.dots, self.rows)
        label_axis(self.getPlotItem().getAxis("bottom"), column.info)
        self.setLabel("left", view.objective_name(0))
        self.draw_selection(view, self.selected)

    def draw_selection(self, view: StudyView, row: int | None) -> None:
        """A ring around the selected trial."""
        if not drawn(self.rows, row):
            self.ring.setData([], [])
        else:
            self.ring.setData([self.x[row]], [view.values[row, 0]])


class SliceCharts(QWidget):
    """A grid of :class:`SliceChart` s, one per parameter (made as parameters appear)."""

    COLUMNS = 3
    trialClicked = Signal(int)  # row of the trial clicked in any slice

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.charts: dict[str, SliceChart] = {}
        self.view: StudyView | None = None
        caption = QLabel(
            "Each dot is a completed trial; colour shows when it ran (dark: early, bright: late).",
            self,
        )
        caption.setEnabled(False)  # secondary text
        self._grid = QGridLayout()
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(4)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addWidget(caption)
        layout.addLayout(self._grid, 1)

    def set_view(self, view: StudyView | None) -> None:
        """Show another study: drop the old charts."""
        self.view = view
        for chart in self.charts.values():
            self._grid.removeWidget(chart)
            chart.deleteLater()
        self.charts = {}

    def ensure_charts(self) -> list[SliceChart]:
        """One chart per parameter of the view (new parameters get a new chart)."""
        if self.view is not None:
            for name in self.view.params:
                if name not in self.charts:
                    chart = SliceChart(name, self)
                    chart.set_view(self.view)
                    chart.trialClicked.connect(self.trialClicked)
                    i = len(self.charts)
                    self._grid.addWidget(chart, i // self.COLUMNS, i % self.COLUMNS)
                    self.charts[name] = chart
        return list(self.charts.values())


def drawn(rows: np.ndarray, row: int | None) -> bool:
    """True when the trial in ``row`` is among the drawn ``rows`` (one vector compare,
    no set of every row built on each selection)."""
    return row is not None and bool((rows == row).any())
