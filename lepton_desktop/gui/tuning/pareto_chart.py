"""The Pareto front of a multi-objective study: completed trials by their first two
objectives, the non-dominated ones joined by a line."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from lepton_desktop.core.tuning.reading import COMPLETE
from lepton_desktop.core.tuning.study_view import StudyView, pareto_mask
from lepton_desktop.gui.tuning.charts import GOLD, WARM, StudyChart, translucent
from lepton_desktop.gui.tuning.plot_items import DotsItem


class ParetoChart(StudyChart):
    """Completed trials by their first two objectives; the Pareto front highlighted."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, "Pareto front")
        self.others = DotsItem([translucent("#8a8f98", 150)], size=5)
        self.front_line = pg.PlotDataItem(pen=pg.mkPen(WARM, width=1.5))
        self.front = DotsItem([WARM], size=8)
        self.ring = pg.ScatterPlotItem(size=14, pen=pg.mkPen(GOLD, width=2), brush=None)
        for item in (self.others, self.front_line, self.front, self.ring):
            self.addItem(item)
        self.front_rows = np.zeros(0, dtype=np.int64)

    def reset(self) -> None:
        """Clear the plot."""
        self.others.set_data(np.zeros(0), np.zeros(0))
        self.front.set_data(np.zeros(0), np.zeros(0))
        self.front_line.setData([], [])
        self.ring.setData([], [])
        self.front_rows = np.zeros(0, dtype=np.int64)

    def draw(self, view: StudyView) -> None:
        """Dominated trials grey, the front in colour joined by a line."""
        if view.n_objectives < 2:
            self.reset()
            return
        done = (view.states == COMPLETE) & np.isfinite(view.values).all(axis=1)
        rows = np.flatnonzero(done)
        front = pareto_mask(view.values[rows], view.directions)
        x, y = view.values[rows, 0], view.values[rows, 1]
        self.others.set_data(x[~front], y[~front])
        self.front.set_data(x[front], y[front])
        self.front_rows = rows[front]
        order = np.argsort(x[front], kind="stable")
        self.front_line.setData(x[front][order], y[front][order])
        self.pickable(self.others, rows[~front])
        self.pickable(self.front, self.front_rows)
        self.setLabel("bottom", view.objective_name(0))
        self.setLabel("left", view.objective_name(1))
        self.draw_selection(view, self.selected)

    def draw_selection(self, view: StudyView, row: int | None) -> None:
        """A ring around the selected trial."""
        if (
            row is None
            or row >= view.n
            or view.n_objectives < 2
            or not np.isfinite(view.values[row, :2]).all()
        ):
            self.ring.setData([], [])
        else:
            self.ring.setData([view.values[row, 0]], [view.values[row, 1]])
