"""The Monitoring tab's four charts over time, their x axes linked.

Requests per second (with 4xx and 5xx per second), latency percentiles, the
predictions (each class's share of the answered rows, or the predicted values' mean,
minimum and maximum) and the requests each version answered. Latency and error-rate
spikes (robust z-scores against each series' recent past, found in core) are marked
with red dots on the latency and the requests charts. Dragging a rectangle on any
chart chooses that time range: :attr:`MonitoringCharts.rangeChosen` carries it, and
the tab reads the range again at a finer grain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QWidget

from lepton_desktop.core.monitoring.traffic import Series
from lepton_desktop.gui.widgets.charts import LineChart, hide_until_drawn


class MonitoringCharts(QWidget):
    """Requests, latency, predictions and versions of one read, x in epoch seconds.

    Signals:
        rangeChosen(float, float): the user dragged a range (Unix seconds).
    """

    rangeChosen = Signal(float, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.requests = LineChart(self, "Requests / s", dates=True)
        self.latency = LineChart(self, "Latency (ms)", dates=True)
        self.predictions = LineChart(self, "Predictions", dates=True)
        self.versions = LineChart(self, "Requests / s per version", dates=True)
        self._marks: list[list[pg.InfiniteLine]] = [[] for _ in range(4)]
        self._events: list[float] = []
        self._spikes: tuple[list[float], ...] = ()
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for i, chart in enumerate(self.charts):
            layout.addWidget(chart, i // 2, i % 2)
            box = chart.getPlotItem().getViewBox()
            box.setMouseMode(pg.ViewBox.RectMode)  # drag = choose a range
            box.setMouseEnabled(x=True, y=False)
            box.sigRangeChangedManually.connect(lambda *_a, c=chart: self._chosen(c))
            hide_until_drawn(chart)
        self.latency_spikes = _spike_marks(self.latency)
        self.error_spikes = _spike_marks(self.requests)

    @property
    def charts(self) -> tuple[LineChart, ...]:
        return (self.requests, self.latency, self.predictions, self.versions)

    @property
    def steps(self) -> tuple[Callable[[Series], None], ...]:
        """The four charts' drawing methods, in order: a caller runs one an event-loop
        turn, letting the window repaint between them, so that no turn lays out and
        paints all four."""
        return (self.show_requests, self.show_latency, self.show_predictions,
                self.show_versions)  # fmt: skip

    def show_requests(self, series: Series) -> None:
        """Requests per second, with 4xx and 5xx per second."""
        rate = series.per_second
        self.requests.show_series(_middles(series), {
            "requests/s": rate(series.requests),
            "4xx/s": rate(series.errors_4xx),
            "5xx/s": rate(series.errors_5xx),
        }, dates=True)  # fmt: skip
        self.requests.show()

    def show_latency(self, series: Series) -> None:
        """Latency percentiles."""
        latency = {f"p{p}": values for p, values in series.latency_ms.items()}
        self.latency.show_series(_middles(series), latency, dates=True)
        self.latency.show()

    def show_predictions(self, series: Series) -> None:
        """Each class's share of the rows, or the predicted values' mean, min and max."""
        x = _middles(series)
        if series.classes:
            shares = {label: 100 * share for label, share in series.classes.items()}
            self.predictions.set_title("Predictions (% of rows per class)")
            self.predictions.show_series(x, shares, dates=True)
        else:
            self.predictions.set_title("Predicted value")
            values = {"mean": series.value_mean, "min": series.value_min, "max": series.value_max}
            values = values if len(series.value_mean) else {}
            self.predictions.show_series(x, values, dates=True)
        self.predictions.show()

    def show_versions(self, series: Series) -> None:
        """The requests each version answered, per second."""
        versions = {name: series.per_second(counts) for name, counts in series.versions.items()}
        self.versions.show_series(_middles(series), versions, dates=True)
        self.versions.show()

    def show_events(self, times: list[float]) -> None:
        """Mark server restarts (Unix seconds) with vertical lines on every chart."""
        if times == self._events:
            return  # the same marks: nothing to repaint
        self._events = list(times)
        for chart, lines in zip(self.charts, self._marks, strict=True):
            for line in lines:
                chart.removeItem(line)
            lines.clear()
            pen = pg.mkPen("#d62828", width=1, style=Qt.PenStyle.DashLine)
            for t in times:
                line = pg.InfiniteLine(t, angle=90, pen=pen)
                line.setToolTip("a server process was restarted")
                chart.addItem(line)
                lines.append(line)

    def show_spikes(self, series: Series, anomalies: dict[str, Any]) -> None:
        """Mark the latency spikes (at their p95) and error spikes (at their errors/s)."""
        half = series.bin_seconds / 2
        latency = anomalies.get("latency_spikes", [])
        errors = anomalies.get("error_spikes", [])
        index = {float(start): i for i, start in enumerate(series.start)}
        rate = series.per_second(series.errors_4xx + series.errors_5xx)
        bins = [index[s["start"]] for s in errors if s["start"] in index]
        marks = ([s["start"] + half for s in latency], [s["value"] for s in latency],
                 [series.start[i] + half for i in bins], [rate[i] for i in bins])  # fmt: skip
        if marks == self._spikes:
            return  # the same marks: nothing to repaint
        self._spikes = marks
        self.latency_spikes.setData(marks[0], marks[1])
        self.error_spikes.setData(marks[2], marks[3])

    def _chosen(self, chart: LineChart) -> None:
        # The charts share their x range only when the user changes one (pyqtgraph's
        # setXLink would also move every chart each time one gets new data: the steps
        # of a read, one chart a turn, became every chart each turn).
        low, high = chart.getPlotItem().getViewBox().viewRange()[0]
        if np.isfinite(low) and np.isfinite(high) and high > low:
            for other in self.charts:
                if other is not chart:
                    other.getPlotItem().getViewBox().setXRange(low, high, padding=0)
            self.rangeChosen.emit(float(low), float(high))


def _middles(series: Series) -> np.ndarray:
    """The x of each bin: its middle, in Unix seconds."""
    return series.start + series.bin_seconds / 2


def _spike_marks(chart: LineChart) -> pg.ScatterPlotItem:
    """Red dots on ``chart`` for spikes (kept for the chart's life, data replaced)."""
    marks = pg.ScatterPlotItem(size=11, pen=pg.mkPen("#d62828", width=2), brush=None,
                               symbol="o", name="spikes")  # fmt: skip
    chart.getPlotItem().addItem(marks)
    return marks
