"""pyqtgraph charts that follow the app's palette (light or dark) live.

Each chart keeps its plot items for its whole life and only calls ``setOpts`` /
``setData`` on them (pyqtgraph's recipe), with peak downsampling and clip-to-view
for long series. Live series grow in a :class:`SeriesBuffer` (numpy arrays that
double when full); steps, epochs and trial numbers use an :class:`IntegerAxis`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent
from PySide6.QtGui import QColor, QFontMetrics, QPalette
from PySide6.QtWidgets import QWidget

#: Line colours that read well on both light and dark backgrounds.
SERIES_COLORS = ("#3a7bd5", "#e76f51", "#2a9d8f", "#e9c46a", "#9b5de5", "#f15bb5", "#00bbf9")
_MAX_TICK_LABELS = 16
_LABEL_CHARS = 12
#: Tick levels drawn (0: major, 1: minor too). pyqtgraph's default adds a third, finer
#: level whose grid lines, nearly invisible, made a chart's repaint 3-7x slower.
_TICK_LEVELS = 1


class SeriesBuffer:
    """x and y values in numpy arrays that grow by doubling (amortised O(1) appends).

    Args:
        capacity: the initial number of points held without growing.
    """

    def __init__(self, capacity: int = 256) -> None:
        self._x = np.empty(capacity)
        self._y = np.empty(capacity)
        self.size = 0

    def extend(self, x: np.ndarray, y: np.ndarray) -> None:
        """Append points."""
        end = self.size + len(x)
        if end > len(self._x):
            capacity = max(end, 2 * len(self._x))
            self._x = np.resize(self._x, capacity)
            self._y = np.resize(self._y, capacity)
        self._x[self.size : end] = x
        self._y[self.size : end] = y
        self.size = end

    @property
    def x(self) -> np.ndarray:
        """The x values held (a view)."""
        return self._x[: self.size]

    @property
    def y(self) -> np.ndarray:
        """The y values held (a view)."""
        return self._y[: self.size]


class IntegerAxis(pg.AxisItem):
    """An axis of whole numbers (steps, epochs): no ticks between them."""

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> list:
        """pyqtgraph's spacings, without those finer than 1."""
        levels = super().tickSpacing(minVal, maxVal, size)
        kept = [(spacing, offset) for spacing, offset in levels if spacing >= 1]
        return kept or [(1.0, 0.0)]


class ThemedPlot(pg.PlotWidget):
    """A PlotWidget whose background, axes and text follow the widget palette.

    Args:
        parent: the parent widget.
        title: shown above the plot.
    """

    def __init__(self, parent: QWidget | None = None, title: str = "") -> None:
        self._built = False  # pyqtgraph's constructor already sends PaletteChange
        super().__init__(parent)
        self._title = title
        self.setMinimumHeight(160)
        self.getPlotItem().hideButtons()
        self.getPlotItem().setMenuEnabled(False)
        self._built = True
        self.apply_palette()

    @property
    def background_color(self) -> QColor:
        """The background currently drawn."""
        return QColor(self.backgroundBrush().color())

    def set_title(self, title: str) -> None:
        """Change the chart's title (the same title again repaints nothing)."""
        if title == self._title:
            return
        self._title = title
        self._draw_title()

    def changeEvent(self, event: QEvent) -> None:
        """Restyle when the palette changes (theme switch)."""
        if event.type() == QEvent.Type.PaletteChange and self._built:
            self.apply_palette()
        super().changeEvent(event)

    def apply_palette(self) -> None:
        """Take background and foreground from the palette."""
        palette = self.palette()
        self.setBackground(palette.color(QPalette.ColorRole.Base))
        text = palette.color(QPalette.ColorRole.Text)
        for name in ("left", "bottom"):
            axis = self.getPlotItem().getAxis(name)
            axis.setPen(pg.mkPen(palette.color(QPalette.ColorRole.Mid)))
            axis.setTextPen(pg.mkPen(text))
            axis.setStyle(maxTickLevel=_TICK_LEVELS)
        self._draw_title()

    def _draw_title(self) -> None:
        color = self.palette().color(QPalette.ColorRole.Text).name()
        self.getPlotItem().setTitle(self._title or None, color=color, size="10pt")

    def accent(self) -> QColor:
        """The palette's highlight colour (bars)."""
        return self.palette().color(QPalette.ColorRole.Highlight)


class BarChart(ThemedPlot):
    """Bars: a numeric histogram (bin edges) or counts per label."""

    def __init__(self, parent: QWidget | None = None, title: str = "") -> None:
        super().__init__(parent, title)
        self._bars = pg.BarGraphItem(x=[], height=[], width=1.0)
        self.addItem(self._bars)
        self.getPlotItem().showGrid(y=True, alpha=0.15)
        self.n_bars = 0
        self.apply_palette()

    def apply_palette(self) -> None:
        """Restyle axes and bars."""
        super().apply_palette()
        if hasattr(self, "_bars"):
            self._bars.setOpts(brush=self.accent(), pen=pg.mkPen(self.accent().darker(130)))

    def show_counts(
        self, labels: Sequence[str], counts: Sequence[int], edges: Sequence[float] | None = None
    ) -> None:
        """Draw one bar per count; with ``edges`` the x axis is numeric (a histogram)."""
        self.n_bars = len(counts)
        axis = self.getPlotItem().getAxis("bottom")
        if edges:
            left = np.asarray(edges[:-1], dtype=float)
            width = np.diff(np.asarray(edges, dtype=float))
            self._bars.setOpts(x0=left, x=None, width=width, height=list(counts))
            axis.setTicks(None)
        else:
            x = np.arange(len(counts), dtype=float)
            self._bars.setOpts(x=x, x0=None, width=0.8, height=list(counts))
            axis.setTicks([_label_ticks(labels)])
        self.getPlotItem().enableAutoRange()

    def clear_bars(self) -> None:
        """Show nothing."""
        self.show_counts([], [])


#: Series this short are drawn with a dot on each point (see LineChart.show_series).
FEW_POINTS = 3


class LineChart(ThemedPlot):
    """One line per series over a shared x (numbers or epoch seconds)."""

    def __init__(
        self, parent: QWidget | None = None, title: str = "", dates: bool = False
    ) -> None:
        super().__init__(parent, title)
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._drawn: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # what each curve shows
        self._legend = self.getPlotItem().addLegend(offset=(10, 10))
        self._dates = False
        # A chart of dates gets its date axis now: swapped in at the first data, the new
        # axis re-lays out the plot and repaints it again.
        self._set_date_axis(dates)
        item = self.getPlotItem()
        item.showGrid(x=True, y=True, alpha=0.15)
        item.setDownsampling(auto=True, mode="peak")
        item.setClipToView(True)
        self.apply_palette()

    def apply_palette(self) -> None:
        """Restyle axes and the legend's text."""
        super().apply_palette()
        if hasattr(self, "_legend"):
            self._legend.setLabelTextColor(self.palette().color(QPalette.ColorRole.Text))
            for curve in self._curves.values():
                self._legend.removeItem(curve)
                self._legend.addItem(curve, curve.name())

    def show_series(self, x: np.ndarray, series: dict[str, np.ndarray], dates: bool) -> bool:
        """Draw ``series`` (name -> y) against ``x``; ``dates``: x holds epoch seconds.
        Returns whether anything changed.

        A curve whose data did not change is left alone: a poller redraws its charts
        every few seconds, and repainting them unchanged would block the GUI for
        nothing (tens of milliseconds for a tab of charts).
        """
        self._set_date_axis(dates)
        changed = False
        for name in list(self._curves):
            if name not in series:
                self._remove(name)
                changed = True
        for i, (name, y) in enumerate(series.items()):
            if name in self._curves and _same(self._drawn.get(name), x, y):
                continue
            color = SERIES_COLORS[i % len(SERIES_COLORS)]
            curve = self._curves.get(name) or self._add(name, color)
            # A line needs two points: with only a few (one minute of traffic), each is
            # drawn as a dot too, so the chart is never blank while it has data.
            dots = {"symbol": "o", "symbolSize": 6, "symbolBrush": color, "symbolPen": None}
            few = len(x) <= FEW_POINTS
            curve.setData(x, y, connect="finite", **(dots if few else {"symbol": None}))
            self._drawn[name] = (np.array(x, copy=True), np.array(y, copy=True))
            changed = True
        if changed:
            self._fit_view(x, series)
        return changed

    def extra_y(self) -> list[float]:
        """Values besides the series that the y range must hold (a reference line)."""
        return []

    def _fit_view(self, x: np.ndarray, series: dict[str, np.ndarray]) -> None:
        """Range the view on the data now, as auto-range would at the next paint.

        pyqtgraph's auto-range runs while painting: a new range re-ticks the axes and
        moves the x-linked charts, which repaint and re-range in turn, a chain of 4-5
        repaints of every chart in one go (100+ ms of a frozen window on a tab of
        charts). Set here, the range is final before the first paint.
        """
        ys = [np.asarray(y, dtype=float) for y in [*series.values(), self.extra_y()]]
        y = np.concatenate([v[np.isfinite(v)] for v in ys])
        xs = np.asarray(x, dtype=float)
        xs = xs[np.isfinite(xs)]
        if not len(xs) or not len(y):
            self.getPlotItem().enableAutoRange()
            return
        box = self.getPlotItem().getViewBox()
        box.disableAutoRange()
        box.setRange(xRange=_span(xs.min(), xs.max()), yRange=_span(y.min(), y.max()))
        self._reserve_tick_text(*box.viewRange()[1])

    def _reserve_tick_text(self, low: float, high: float) -> None:
        """Size the y axis for the tick labels of ``low..high`` now.

        Left to itself, pyqtgraph measures its tick labels while painting, and a new
        width re-lays out the plot, which paints again: every chart twice.
        """
        axis = self.getPlotItem().getAxis("left")
        levels = axis.tickValues(low, high, max(axis.geometry().height(), 100.0))
        labels = [text for spacing, values in levels
                  for text in axis.tickStrings(values, axis.scale, spacing)]  # fmt: skip
        metrics = QFontMetrics(axis.style["tickFont"] or self.font())
        width = max((metrics.horizontalAdvance(text) for text in labels), default=0) + 4
        if axis.style["autoExpandTextSpace"] or width != axis.style["tickTextWidth"]:
            axis.setStyle(autoExpandTextSpace=False, tickTextWidth=int(width))

    @property
    def series_names(self) -> list[str]:
        """Names of the lines drawn."""
        return list(self._curves)

    def _add(self, name: str, color: str) -> pg.PlotDataItem:
        # Width 1: a wider antialiased pen strokes each segment as a polygon, several
        # times the cost of a thin line (40 ms for one chart of spiky data).
        curve = self.getPlotItem().plot(name=name, pen=pg.mkPen(color, width=1))
        self._curves[name] = curve
        return curve

    def _remove(self, name: str) -> None:
        self.getPlotItem().removeItem(self._curves.pop(name))
        self._drawn.pop(name, None)

    def _set_date_axis(self, dates: bool) -> None:
        if dates == self._dates:
            return
        self._dates = dates
        axis = pg.DateAxisItem("bottom", utcOffset=0) if dates else pg.AxisItem("bottom")
        self.getPlotItem().setAxisItems({"bottom": axis})
        self.apply_palette()


def hide_until_drawn(chart: QWidget) -> None:
    """Hide ``chart`` while keeping its place in the layout; ``chart.show()`` once it
    has data.

    A tab of charts shown before its first read paints every empty chart, laying out
    each one's axes and text for the first time (8-15 ms a chart, 50 ms and more for a
    tab of five in one event-loop turn), then paints them again with the data. Shown
    one at a time as their data arrive, each paints once, in a turn of its own; its
    place is kept meanwhile, so showing it moves nothing else.
    """
    policy = chart.sizePolicy()
    policy.setRetainSizeWhenHidden(True)
    chart.setSizePolicy(policy)
    chart.hide()


def _span(low: float, high: float) -> tuple[float, float]:
    """A range holding ``low..high`` that is never empty (one point, a flat line)."""
    if high > low:
        return float(low), float(high)
    half = max(abs(low) * 0.05, 0.5)
    return float(low) - half, float(high) + half


def _same(drawn: tuple[np.ndarray, np.ndarray] | None, x: np.ndarray, y: np.ndarray) -> bool:
    """Whether a curve already shows ``x, y`` (NaN gaps compare equal)."""
    if drawn is None:
        return False
    return bool(np.array_equal(drawn[0], x, equal_nan=True)
                and np.array_equal(drawn[1], y, equal_nan=True))  # fmt: skip


def category_ticks(labels: Sequence[str]) -> list[tuple[float, str]]:
    """Ticks for bars at 0, 1, 2, ... named by ``labels`` (thinned to stay readable)."""
    return _label_ticks(labels)


def _label_ticks(labels: Sequence[str]) -> list[tuple[float, str]]:
    """Category ticks, thinned so that labels do not overlap."""
    step = max(1, -(-len(labels) // _MAX_TICK_LABELS))
    return [(float(i), _short(label)) for i, label in enumerate(labels) if i % step == 0]


def _short(label: str) -> str:
    return label if len(label) <= _LABEL_CHARS else label[: _LABEL_CHARS - 1] + "…"
