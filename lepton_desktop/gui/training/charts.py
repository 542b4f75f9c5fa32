"""Live training charts (STYLE §4.13): one curve per (run, series) for the chart's life.

Points are appended to numpy buffers that double when full; a chart redraws only
the curves whose buffers grew, at most once per poll tick, with peak downsampling
and clip-to-view, so a million-point loss curve stays cheap. Each shown run has its
own colour; a run's training series are dashed and its validation series solid.
A deselected run's curves are hidden, not dropped: selecting it again shows its
cached points at once, and polling continues from where it stopped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QGridLayout, QWidget

from lepton_desktop.gui.training.ops import RunUpdate
from lepton_desktop.gui.widgets.charts import SERIES_COLORS, IntegerAxis, SeriesBuffer, ThemedPlot

Key = tuple[int, str]  # (run id, series name)


@dataclasses.dataclass
class _Series:
    curve: pg.PlotDataItem
    buffer: SeriesBuffer
    label: str
    dashed: bool
    dirty: bool = False


class LiveChart(ThemedPlot):
    """A plot of series keyed by (run id, name), appended to and redrawn per tick.

    Args:
        title: shown above the plot.
        parent: the parent widget.
        integer_x: x holds whole numbers (steps, epochs).
        from_zero: the y axis starts at 0 (learning rates).
    """

    def __init__(
        self, title: str, parent: QWidget | None = None, *, integer_x: bool = False,
        from_zero: bool = False,
    ) -> None:
        super().__init__(parent, title)
        self._series: dict[Key, _Series] = {}
        self._runs: list[int] = []
        self._from_zero = from_zero
        item = self.getPlotItem()
        if integer_x:
            item.setAxisItems({"bottom": IntegerAxis("bottom")})
        self._legend = item.addLegend(offset=(-8, 8), labelTextSize="8pt")
        item.showGrid(x=True, y=True, alpha=0.15)
        item.setDownsampling(auto=True, mode="peak")
        item.setClipToView(True)
        self.apply_palette()

    def append(self, key: Key, x: np.ndarray, y: np.ndarray, label: str, dashed: bool) -> None:
        """Queue points of one series for the next :meth:`redraw`."""
        series = self._series.get(key) or self._add(key, label, dashed)
        if series.buffer.size and len(x) and x[0] <= series.buffer.x[-1]:
            # A resumed run repeats the steps after its last checkpoint: break the line.
            series.buffer.extend(x[:1], np.array([np.nan]))
        series.buffer.extend(x, y)
        series.dirty = True

    def redraw(self) -> None:
        """Hand the grown buffers to their curves (one ``setData`` each)."""
        grew = False
        for series in self._series.values():
            if series.dirty:
                series.curve.setData(series.buffer.x, series.buffer.y, connect="finite")
                series.dirty = False
                grew = True
        if grew and self._from_zero:
            self._range_from_zero()

    def _range_from_zero(self) -> None:
        tops = [np.nanmax(s.buffer.y) for k, s in self._series.items()
                if k[0] in self._runs and s.buffer.size]
        top = max((t for t in tops if np.isfinite(t)), default=0.0)
        if top > 0:
            self.getPlotItem().setYRange(0, top * 1.1, padding=0)

    def show_runs(self, run_ids: Sequence[int]) -> None:
        """Show the curves of these runs (one colour each, in this order); hide others."""
        self._runs = list(run_ids)
        for key, series in self._series.items():
            series.curve.setVisible(key[0] in self._runs)
            self._style(key, series)
        self._fill_legend()
        self.getPlotItem().enableAutoRange()
        if self._from_zero:
            self._range_from_zero()

    def drop_runs(self, run_ids: Iterable[int]) -> None:
        """Forget these runs' curves and points (deleted runs)."""
        gone = set(run_ids)
        for key in [k for k in self._series if k[0] in gone]:
            self.getPlotItem().removeItem(self._series.pop(key).curve)
        self._fill_legend()

    def points(self, run_id: int, name: str) -> int:
        """How many points a series holds (0 if it has none yet)."""
        series = self._series.get((run_id, name))
        return series.buffer.size if series else 0

    def curve_data(self, run_id: int, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The data a series' curve currently draws."""
        curve = self._series[(run_id, name)].curve
        return curve.xData if curve.xData is not None else np.zeros(0), curve.yData

    def visible_curves(self) -> list[Key]:
        """Keys of the curves shown."""
        return [k for k, s in self._series.items() if s.curve.isVisible()]

    def apply_palette(self) -> None:
        """Restyle axes and the legend's text."""
        super().apply_palette()
        if hasattr(self, "_legend"):
            self._legend.setLabelTextColor(self.palette().color(QPalette.ColorRole.Text))
            self._legend.setBrush(pg.mkBrush(_translucent(self.palette().color(
                QPalette.ColorRole.Base))))
            self._fill_legend()

    def _add(self, key: Key, label: str, dashed: bool) -> _Series:
        curve = pg.PlotDataItem()
        curve.setVisible(key[0] in self._runs)
        self.getPlotItem().addItem(curve)
        series = _Series(curve, SeriesBuffer(), label, dashed)
        self._series[key] = series
        self._style(key, series)
        self._fill_legend()
        return series

    def _style(self, key: Key, series: _Series) -> None:
        index = self._runs.index(key[0]) if key[0] in self._runs else 0
        style = Qt.PenStyle.DashLine if series.dashed else Qt.PenStyle.SolidLine
        color = SERIES_COLORS[index % len(SERIES_COLORS)]
        # Width 1: thicker antialiased pens make noisy million-point curves paint slowly.
        series.curve.setPen(pg.mkPen(color, width=1, style=style))

    def _fill_legend(self) -> None:
        self._legend.clear()
        many = len(self._runs) > 1
        for key, series in self._series.items():
            if key[0] in self._runs:
                name = f"run {key[0]} {series.label}" if many else series.label
                self._legend.addItem(series.curve, name)
        self._legend.setVisible(bool(self._legend.items))


def _translucent(color: QColor, alpha: int = 170) -> QColor:
    color = QColor(color)
    color.setAlpha(alpha)
    return color


#: Where each metric goes: name -> (chart, label, dashed). Per-epoch ``*_mae`` has no
#: chart of its own; R² and accuracy share the "metric" chart.
_METRICS = {
    "loss": ("step", "loss", False),
    "train_loss": ("epoch_loss", "train", True),
    "val_loss": ("epoch_loss", "val", False),
    "train_accuracy": ("metric", "train", True),
    "val_accuracy": ("metric", "val", False),
    "train_r2": ("metric", "train", True),
    "val_r2": ("metric", "val", False),
    "lr": ("lr", "lr", False),
}
_SYSTEM = {
    "cpu_percent": ("cpu", "CPU", False),
    "gpu_percent": ("cpu", "GPU", True),
    "rss_mb": ("memory", "RSS", False),
    "gpu_mem_mb": ("memory", "GPU", True),
}
_TITLES = {
    "step": "Loss per step",
    "epoch_loss": "Loss per epoch",
    "metric": "Accuracy per epoch",
    "lr": "Learning rate",
    "cpu": "CPU % (no GPU)",
    "memory": "Memory MB",
}
_AXES = {"step": ("step", None), "epoch_loss": ("epoch", None), "metric": ("epoch", None),
         "lr": ("epoch", None), "cpu": ("time", "s"), "memory": ("time", "s")}


class TrainingCharts(QWidget):
    """The six live charts of the Training tab, fed with :class:`RunUpdate` s.

    Args:
        parent: the parent widget.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.charts = {
            name: LiveChart(title, self, integer_x=_AXES[name][0] in ("step", "epoch"),
                            from_zero=name == "lr")
            for name, title in _TITLES.items()
        }
        self._gpu_runs: set[int] = set()
        self._regression_runs: set[int] = set()
        self._shown: list[int] = []
        self._titles: dict[str, str] = {}
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        for i, (name, chart) in enumerate(self.charts.items()):
            label, units = _AXES[name]
            chart.setLabel("bottom", label, units=units)
            layout.addWidget(chart, i // 3, i % 3)

    def add(self, update: RunUpdate) -> None:
        """Queue an update's new points (drawn by the next :meth:`redraw`)."""
        run_id = update.run.id
        for name, (x, y) in update.metrics.items():
            if name in _METRICS:
                chart, label, dashed = _METRICS[name]
                self.charts[chart].append((run_id, name), x, y, label, dashed)
            if name.endswith("_r2"):
                self._regression_runs.add(run_id)
        for name, (x, y) in update.system.items():
            chart, label, dashed = _SYSTEM[name]
            self.charts[chart].append((run_id, name), x, y, label, dashed)
            if name.startswith("gpu"):
                self._gpu_runs.add(run_id)

    def redraw(self) -> None:
        """Redraw every chart whose series grew (once per tick)."""
        for chart in self.charts.values():
            chart.redraw()
        self._retitle()

    def show_runs(self, run_ids: Sequence[int]) -> None:
        """Show (overlay) these runs' curves."""
        self._shown = list(run_ids)
        for chart in self.charts.values():
            chart.show_runs(run_ids)
        self._retitle()

    def drop_runs(self, run_ids: Iterable[int]) -> None:
        """Forget deleted runs."""
        for chart in self.charts.values():
            chart.drop_runs(run_ids)

    def title(self, chart: str) -> str:
        """A chart's current title."""
        return self._titles.get(chart, _TITLES[chart])

    def _retitle(self) -> None:
        shown = set(self._shown)
        gpu = bool(shown & self._gpu_runs)
        regression = shown & self._regression_runs
        metric = "Accuracy per epoch"
        if regression:
            metric = "R² per epoch" if regression == shown else "Accuracy or R² per epoch"
        titles = {
            "cpu": "CPU and GPU %" if gpu else "CPU % (no GPU)",
            "memory": "Memory MB (RSS, GPU)" if gpu else "Memory MB (RSS)",
            "metric": metric,
        }
        for name, title in titles.items():
            if self.title(name) != title:
                self._titles[name] = title
                self.charts[name].set_title(title)
