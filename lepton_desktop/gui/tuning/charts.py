"""Study charts over trials: their base, the optimization history, intermediate values.

Each chart draws from a :class:`~lepton_desktop.core.tuning.study_view.StudyView`'s
numpy columns with one ``setData`` per plot item (STYLE §4.13). Many trials' learning
curves are one NaN-separated polyline per state, appended to as trials finish
(their points never change) and drawn as line segments, which Qt paints about twice
as fast as one long path; past :data:`LINE_BUDGET` points every trial keeps only
every k-th step (and its last). Clicking a dot selects its trial. The Pareto front
and the hyperparameter charts build on :class:`StudyChart` in modules of their own.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QWidget

from lepton_desktop.core.tuning.reading import COMPLETE, FAIL, PRUNED
from lepton_desktop.core.tuning.study_view import StudyView
from lepton_desktop.gui.tuning.plot_items import DotsItem
from lepton_desktop.gui.widgets.charts import SERIES_COLORS, IntegerAxis, SeriesBuffer, ThemedPlot

#: Finished trials whose learning curves are drawn at most: beyond it every k-th trial
#: (painting 10,000 overlapping curves takes ~40 ms and shows no more than 2,500 do).
LINE_TRIALS = 2500
#: Points of learning curves drawn at most (beyond it, steps are thinned per trial).
LINE_BUDGET = 40_000
ACCENT, WARM, TEAL, GOLD = SERIES_COLORS[0], SERIES_COLORS[1], SERIES_COLORS[2], SERIES_COLORS[3]
_CLICK_PX = 8


def translucent(color: str, alpha: int) -> QColor:
    """``color`` with this alpha (0-255)."""
    qcolor = QColor(color)
    qcolor.setAlpha(alpha)
    return qcolor


def line_alpha(n_lines: int) -> int:
    """Opacity for many overlapping lines: the more lines, the fainter each one."""
    return int(np.clip(255 * 12 / max(12, n_lines) ** 0.75, 40, 230))


def segments(item: pg.PlotDataItem) -> pg.PlotDataItem:
    """Draw a NaN-separated polyline as separate segments (faster than one path)."""
    item.curve.setSegmentedLineMode("on")
    return item


class StudyChart(ThemedPlot):
    """A plot of a study's trials that redraws from its view when the view changed.

    Args:
        parent: the parent widget.
        title: shown above the plot.
    """

    trialClicked = Signal(int)  # the row of the trial clicked in the view

    def __init__(self, parent: QWidget | None = None, title: str = "") -> None:
        super().__init__(parent, title)
        self.view: StudyView | None = None
        self.selected: int | None = None
        self.drawn_revision = -1
        self.redraws = 0
        self._pickable: list[tuple[DotsItem, np.ndarray]] = []
        self.getPlotItem().showGrid(x=True, y=True, alpha=0.15)
        for side in ("left", "bottom"):
            self.getPlotItem().getAxis(side).enableAutoSIPrefix(False)
        self.scene().sigMouseClicked.connect(self._on_click)

    def set_view(self, view: StudyView | None) -> None:
        """Show another study (None: nothing); drawn by the next :meth:`refresh`."""
        self.view = view
        self.selected = None
        self.drawn_revision = -1
        self.reset()

    def refresh(self) -> bool:
        """Redraw if the view changed since the last redraw; True when it redrew."""
        if self.view is None or self.view.revision == self.drawn_revision:
            return False
        self.redraw()
        return True

    def redraw(self) -> None:
        """Draw the view's current content (always)."""
        if self.view is not None:
            self.draw(self.view)
            self.drawn_revision = self.view.revision
            self.redraws += 1

    def select(self, row: int | None) -> None:
        """Highlight one trial (its row in the view), or none."""
        self.selected = row
        if self.view is not None:
            self.draw_selection(self.view, row)

    # -- for subclasses ------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything drawn (another study)."""

    def draw(self, view: StudyView) -> None:
        """Draw ``view`` (called by :meth:`redraw`)."""

    def draw_selection(self, view: StudyView, row: int | None) -> None:
        """Draw the highlight of the selected trial."""

    def pickable(self, dots: DotsItem, rows: np.ndarray) -> None:
        """Clicking one of ``dots`` selects the trial in the matching entry of ``rows``."""
        self._pickable = [(d, r) for d, r in self._pickable if d is not dots] + [(dots, rows)]

    def _on_click(self, event: object) -> None:
        view_box = self.getPlotItem().getViewBox()
        point = view_box.mapSceneToView(event.scenePos())  # type: ignore[attr-defined]
        px, py = view_box.viewPixelSize()
        best: tuple[float, int] | None = None
        for dots, rows in self._pickable:
            index = dots.nearest(point.x(), point.y(), px, py)
            if index is None:
                continue
            dist = math.hypot((dots.x[index] - point.x()) / px, (dots.y[index] - point.y()) / py)
            if dist <= _CLICK_PX and (best is None or dist < best[0]):
                best = (dist, int(rows[index]))
        if best is not None:
            self.trialClicked.emit(best[1])


class HistoryChart(StudyChart):
    """Each completed trial's value by trial number, and the best value so far."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, "Optimization history")
        self.getPlotItem().setAxisItems({"bottom": IntegerAxis("bottom")})
        self.setLabel("bottom", "trial")
        self.dots = DotsItem([translucent(ACCENT, 170)], size=5)
        self.best = pg.PlotDataItem(pen=pg.mkPen(WARM, width=2), name="best so far")
        self.ring = pg.ScatterPlotItem(size=13, pen=pg.mkPen(GOLD, width=2), brush=None)
        for item in (self.dots, self.best, self.ring):
            self.addItem(item)
        self.rows = np.zeros(0, dtype=np.int64)
        self.apply_palette()

    def reset(self) -> None:
        """Clear the plot."""
        self.dots.set_data(np.zeros(0), np.zeros(0))
        self.best.setData([], [])
        self.ring.setData([], [])

    def draw(self, view: StudyView) -> None:
        """Dots of completed trials; the best-so-far line (one objective only)."""
        done = view.states == COMPLETE
        self.rows = np.flatnonzero(done)
        numbers = view.numbers.astype(float)
        self.dots.set_data(numbers[done], view.values[done, 0])
        self.pickable(self.dots, self.rows)
        if view.n_objectives == 1:
            self.best.setData(*stairs(numbers, view.best_so_far(0)))
        else:
            self.best.setData([], [])
        self.setLabel("left", view.objective_name(0))
        self.draw_selection(view, self.selected)

    def draw_selection(self, view: StudyView, row: int | None) -> None:
        """A ring around the selected trial's dot."""
        if row is None or row >= view.n or not np.isfinite(view.values[row, 0]):
            self.ring.setData([], [])
        else:
            self.ring.setData([float(view.numbers[row])], [view.values[row, 0]])


def stairs(x: np.ndarray, best: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The best-so-far line as steps through its changes only (a few dozen points)."""
    finite = np.flatnonzero(np.isfinite(best))
    if not len(finite):
        return np.zeros(0), np.zeros(0)
    x, best = x[finite], best[finite]
    change = np.flatnonzero(np.r_[True, best[1:] != best[:-1]])
    xs = np.r_[np.repeat(x[change], 2)[1:], x[-1]]
    ys = np.repeat(best[change], 2)
    return xs, ys


def separated(
    rows: np.ndarray, steps: np.ndarray, values: np.ndarray, stride: int
) -> tuple[np.ndarray, np.ndarray]:
    """One polyline per trial joined with NaN gaps; every ``stride``-th step plus the last.

    Args:
        rows: the trial of each point (each trial's points contiguous, by step).
        steps, values: the points.
        stride: keep every ``stride``-th point of each trial (and always its last).
    """
    if not len(rows):
        return np.zeros(0), np.zeros(0)
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    if stride > 1:
        position = np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)]))
        last = np.r_[starts[1:] - 1, len(rows) - 1]
        keep = position % stride == 0
        keep[last] = True
        rows, steps, values = rows[keep], steps[keep], values[keep]
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    cuts = np.r_[starts[1:], len(rows)]  # a NaN after each trial's last point
    return np.insert(steps, cuts, np.nan), np.insert(values, cuts, np.nan)


class _Lines:
    """One growing NaN-separated polyline (a buffer and its plot item)."""

    def __init__(self, item: pg.PlotDataItem) -> None:
        self.item = item
        self.buffer = SeriesBuffer(1024)
        self.dirty = False

    def extend(self, x: np.ndarray, y: np.ndarray) -> None:
        if len(x):
            self.buffer.extend(x, y)
            self.dirty = True

    def flush(self) -> None:
        if self.dirty:
            self.item.setData(self.buffer.x, self.buffer.y, connect="finite", skipFiniteCheck=True)
            self.dirty = False

    def clear(self) -> None:
        self.buffer = SeriesBuffer(1024)
        self.item.setData([], [])
        self.dirty = False


class IntermediateChart(StudyChart):
    """Every trial's reported values by step; pruned trials in another colour, ended by a dot.

    Finished trials' points are appended once; running trials are redrawn each time.
    Past :data:`LINE_TRIALS` finished trials, every k-th one's curve is drawn (by row,
    so a trial's curve stays drawn as more arrive until k grows); every pruned trial
    keeps its dot.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, "Intermediate values")
        self.getPlotItem().setAxisItems({"bottom": IntegerAxis("bottom")})
        self.setLabel("bottom", "step (epoch)")
        legend = self.getPlotItem().addLegend(offset=(-8, 8), labelTextSize="8pt")
        self.lines = {
            COMPLETE: _Lines(segments(pg.PlotDataItem())),
            PRUNED: _Lines(segments(pg.PlotDataItem())),
            FAIL: _Lines(segments(pg.PlotDataItem())),
        }
        self.running = pg.PlotDataItem(pen=pg.mkPen(TEAL, width=2))
        self.pruned_at = DotsItem([WARM], size=5)
        self.chosen = pg.PlotDataItem(pen=pg.mkPen(GOLD, width=2.5))
        for lines in self.lines.values():
            self.addItem(lines.item)
        for item in (self.running, self.pruned_at, self.chosen):
            self.addItem(item)
        # Samples of their own: the curves' faint pens would make faint legend lines.
        self._samples = [
            (pg.PlotDataItem(pen=pg.mkPen(color, width=2)), label)
            for color, label in ((ACCENT, "complete"), (WARM, "pruned"), (TEAL, "running"))
        ]
        self._legend = legend
        self._consumed = 0
        self._stride = 1
        self._every = 1
        self._alpha = -1
        self._pruned = SeriesBuffer()  # (step, value) where each pruned trial stopped
        self._pruned_rows: list[np.ndarray] = []
        self.apply_palette()

    @property
    def stride(self) -> int:
        """Every how many steps a finished trial's curve keeps a point."""
        return self._stride

    @property
    def every(self) -> int:
        """Every how many finished trials one has its curve drawn."""
        return self._every

    def apply_palette(self) -> None:
        """Restyle the legend text (labels take a new colour only when re-added)."""
        super().apply_palette()
        if hasattr(self, "_legend"):
            self._legend.clear()
            self._legend.setLabelTextColor(self.palette().color(QPalette.ColorRole.Text))
            for sample, label in self._samples:
                self._legend.addItem(sample, label)

    def reset(self) -> None:
        """Forget the drawn curves."""
        for lines in self.lines.values():
            lines.clear()
        self._consumed, self._stride, self._every = 0, 1, 1
        self._pruned, self._pruned_rows = SeriesBuffer(), []
        self.pruned_at.set_data(np.zeros(0), np.zeros(0))
        self.running.setData([], [])
        self.chosen.setData([], [])

    def draw(self, view: StudyView) -> None:
        """Append the curves of newly finished trials; redraw the running ones."""
        finished = view.count(COMPLETE, PRUNED, FAIL)
        every = max(1, math.ceil(finished / LINE_TRIALS))
        stride = max(1, math.ceil(len(view.iv_rows) / every / LINE_BUDGET))
        if (every, stride) != (self._every, self._stride) or self._consumed > len(view.iv_rows):
            self.reset()
            self._every, self._stride = every, stride
        self._append(view, slice(self._consumed, len(view.iv_rows)))
        self._consumed = len(view.iv_rows)
        self._style(min(finished, LINE_TRIALS))
        drawn = "" if every == 1 else f" (1 in {every} of {finished:,} trials)"
        self.set_title(f"Intermediate values{drawn}")
        for lines in self.lines.values():
            lines.flush()
        live = separated(view.live_rows, view.live_steps, view.live_values, 1)
        self.running.setData(*live, connect="finite", skipFiniteCheck=True)
        self.setLabel("left", view.objective_name(0))
        self.draw_selection(view, self.selected)

    def _append(self, view: StudyView, new: slice) -> None:
        rows = view.iv_rows[new]
        steps, values = view.iv_steps[new], view.iv_values[new]
        states = view.states[rows]
        sampled = rows % self._every == 0
        for state, lines in self.lines.items():
            mask = (states == state) & sampled
            lines.extend(*separated(rows[mask], steps[mask], values[mask], self._stride))
        pruned = states == PRUNED
        if pruned.any():
            rows, steps, values = rows[pruned], steps[pruned], values[pruned]
            last = np.r_[rows[1:] != rows[:-1], True]
            self._pruned.extend(steps[last], values[last])
            self._pruned_rows.append(rows[last])
            self.pruned_at.set_data(self._pruned.x, self._pruned.y)
            self.pickable(self.pruned_at, np.concatenate(self._pruned_rows))

    def _style(self, n_lines: int) -> None:
        alpha = line_alpha(n_lines)
        if alpha == self._alpha:
            return
        self._alpha = alpha
        colors = {COMPLETE: ACCENT, PRUNED: WARM, FAIL: "#8a8f98"}
        for state, lines in self.lines.items():
            lines.item.setPen(pg.mkPen(translucent(colors[state], alpha), width=1))

    def draw_selection(self, view: StudyView, row: int | None) -> None:
        """The selected trial's curve, thick, on top."""
        if row is None or row >= view.n:
            self.chosen.setData([], [])
        else:
            self.chosen.setData(*view.curve(row))


def scene_point(chart: ThemedPlot, x: float, y: float) -> QPointF:
    """Where a data point lies in the chart's scene (tests click there)."""
    return chart.getPlotItem().getViewBox().mapViewToScene(QPointF(x, y))
