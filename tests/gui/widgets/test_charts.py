"""Chart bases every feature draws with: buffers, integer axes, bars, lines, palettes."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtGui import QColor, QPalette
from pytestqt.qtbot import QtBot

from lepton_desktop.gui.monitoring.quality_chart import QualityChart
from lepton_desktop.gui.widgets.charts import BarChart, IntegerAxis, LineChart, SeriesBuffer

pytestmark = pytest.mark.gui


def test_series_buffer_grows_by_doubling_and_keeps_every_point() -> None:
    buffer = SeriesBuffer(capacity=4)
    buffer.extend(np.arange(3.0), np.arange(3.0) * 2)
    buffer.extend(np.arange(3.0, 5.0), np.arange(3.0, 5.0) * 2)  # past the capacity
    assert buffer.size == 5 and len(buffer._x) == 8
    buffer.extend(np.arange(5.0, 30.0), np.arange(5.0, 30.0) * 2)  # more than double
    assert buffer.size == 30 and len(buffer._x) >= 30
    assert np.array_equal(buffer.x, np.arange(30.0))
    assert np.array_equal(buffer.y, np.arange(30.0) * 2)


def test_integer_axis_puts_no_tick_between_whole_numbers(qtbot: QtBot) -> None:
    axis = IntegerAxis("bottom")
    assert all(spacing >= 1 for spacing, _ in axis.tickSpacing(0.0, 3.0, 600.0))
    assert axis.tickSpacing(0.0, 0.5, 600.0) == [(1.0, 0.0)]


def test_bar_chart_draws_counts_or_a_histogram(qtbot: QtBot) -> None:
    chart = BarChart(title="species")
    qtbot.addWidget(chart)
    chart.show_counts(["setosa", "versicolor", "virginica"], [50, 50, 50])
    assert chart.n_bars == 3
    chart.show_counts(["", ""], [4, 6], edges=[0.0, 0.5, 1.0])
    assert chart.n_bars == 2
    chart.clear_bars()
    assert chart.n_bars == 0


def test_line_chart_keeps_one_curve_per_series_and_follows_the_palette(qtbot: QtBot) -> None:
    chart = LineChart(title="requests")
    qtbot.addWidget(chart)
    x = np.arange(10.0)
    chart.show_series(x, {"rate": x, "p50": x * 2}, dates=False)
    assert chart.series_names == ["rate", "p50"]
    chart.show_series(x, {"rate": x + 1}, dates=True)
    assert chart.series_names == ["rate"]

    dark = QPalette(chart.palette())
    dark.setColor(QPalette.ColorRole.Base, QColor("#1e1f22"))
    chart.setPalette(dark)  # a theme switch
    assert chart.background_color == QColor("#1e1f22")


def test_a_line_chart_with_one_point_draws_it_as_a_dot(qtbot: QtBot) -> None:
    # One minute of traffic is one bucket: a line through one point draws nothing.
    chart = LineChart(title="requests")
    qtbot.addWidget(chart)
    chart.show_series(np.array([60.0]), {"rate": np.array([10.0])}, dates=True)
    (curve,) = chart.getPlotItem().listDataItems()
    assert curve.opts["symbol"] == "o"
    chart.show_series(np.arange(100.0), {"rate": np.arange(100.0)}, dates=True)
    assert curve.opts["symbol"] is None  # a long series is a plain line again


def test_a_line_chart_leaves_unchanged_curves_alone(qtbot: QtBot) -> None:
    # A poller redraws every few seconds: unchanged data must not repaint the chart.
    chart = LineChart(title="requests")
    qtbot.addWidget(chart)
    x, y = np.arange(50.0), np.arange(50.0)
    y[7] = np.nan  # a gap (NaN) compares equal to itself here
    chart.show_series(x, {"rate": y, "p50": y * 2}, dates=True)
    rate, p50 = chart.getPlotItem().listDataItems()
    redrawn: list[str] = []
    rate.sigPlotChanged.connect(lambda *_: redrawn.append("rate"))
    p50.sigPlotChanged.connect(lambda *_: redrawn.append("p50"))
    chart.show_series(x.copy(), {"rate": y.copy(), "p50": y * 2}, dates=True)
    assert redrawn == []
    changed = y * 2
    changed[-1] += 1  # the newest bin grew
    chart.show_series(x, {"rate": y, "p50": changed}, dates=True)
    assert redrawn == ["p50"]
    np.testing.assert_array_equal(p50.getData()[1][-1:], changed[-1:])


def test_a_line_chart_is_ranged_and_sized_before_it_paints(qtbot: QtBot) -> None:
    # Left to pyqtgraph, the range and the tick labels' width are found while painting,
    # and each change re-lays out the chart and paints it again (a frozen window).
    chart = LineChart(title="latency", dates=True)
    qtbot.addWidget(chart)
    chart.resize(420, 300)
    chart.show()
    qtbot.waitExposed(chart)
    assert isinstance(chart.getPlotItem().getAxis("bottom"), pg.DateAxisItem)  # from the start
    x = 1.7e9 + np.arange(120.0) * 60
    y = np.linspace(10.0, 12_000.0, 120)
    y[5] = np.nan
    chart.show_series(x, {"p99": y}, dates=True)
    box = chart.getPlotItem().getViewBox()
    (x0, x1), (y0, y1) = box.viewRange()
    assert x0 <= x[0] and x1 >= x[-1] and y0 <= 10 and y1 >= 12_000
    axis = chart.getPlotItem().getAxis("left")
    reserved = axis.style["tickTextWidth"]
    labels = [text for spacing, values in axis.tickValues(y0, y1, axis.height())
              for text in axis.tickStrings(values, 1.0, spacing)]  # fmt: skip
    assert reserved >= chart.fontMetrics().horizontalAdvance(max(labels, key=len))
    ranged = box.viewRange()
    chart.grab()  # a paint
    qtbot.wait(20)
    assert box.viewRange() == ranged  # the paint changed nothing: no second paint
    assert axis.style["tickTextWidth"] == reserved and not axis.style["autoExpandTextSpace"]


def test_the_quality_chart_keeps_its_reference_line_in_view(qtbot: QtBot) -> None:
    chart = QualityChart()
    qtbot.addWidget(chart)
    series = {"metric": "accuracy", "start": [0.0, 60.0, 120.0], "bin_seconds": 60,
              "values": [0.80, None, 0.82], "min": 20}  # fmt: skip
    chart.show_quality(series, {"version": 2, "metrics": {"accuracy": 0.95}})
    (_, _), (y0, y1) = chart.getPlotItem().getViewBox().viewRange()
    assert y0 <= 0.80 and y1 >= 0.95
    assert chart.reference.isVisible() and chart.reference_value == 0.95
