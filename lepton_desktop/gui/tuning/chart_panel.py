"""All the charts of one study, in sub-tabs; only the visible ones redraw.

"Overview" holds the optimization history, the intermediate values, the importances
and the parallel coordinates; "Slices", "Contour" and "Pareto front" (multi-objective
studies) have a tab each. A chart on a hidden tab is marked out of date and redrawn
when its tab is shown (Anki's ``refresh_if_needed``, per chart).
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGridLayout, QTabWidget, QWidget

from lepton_desktop.core.tuning.study_view import StudyView
from lepton_desktop.gui.tuning.charts import HistoryChart, IntermediateChart, StudyChart
from lepton_desktop.gui.tuning.contour_chart import ContourChart
from lepton_desktop.gui.tuning.importance import ImportanceChart
from lepton_desktop.gui.tuning.param_charts import ParallelChart, SliceCharts
from lepton_desktop.gui.tuning.pareto_chart import ParetoChart


class StudyCharts(QTabWidget):
    """The study's charts, fed from one :class:`StudyView`.

    Args:
        parent: the parent widget.
    """

    trialClicked = Signal(int)  # row of the trial clicked in any chart

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDocumentMode(True)
        self.view: StudyView | None = None
        self.selected: int | None = None
        self.history = HistoryChart(self)
        self.intermediate = IntermediateChart(self)
        self.importance = ImportanceChart(self)
        self.parallel = ParallelChart(self)
        self.slices = SliceCharts(self)
        self.contour = ContourChart(self)
        self.pareto = ParetoChart(self)
        self.addTab(self._overview(), "Overview")
        self.addTab(self.slices, "Slices")
        self.addTab(self.contour, "Contour")
        self.pareto_index = self.addTab(self.pareto, "Pareto front")
        self.setTabEnabled(self.pareto_index, False)
        self.setTabToolTip(self.pareto_index, "For studies with two or more objectives")
        for chart in self.fixed_charts():
            chart.trialClicked.connect(self.trialClicked)
        self.slices.trialClicked.connect(self.trialClicked)
        self.currentChanged.connect(lambda _index: self.refresh())

    def _overview(self) -> QWidget:
        page = QWidget(self)
        grid = QGridLayout(page)
        grid.setContentsMargins(0, 4, 0, 0)
        grid.setSpacing(6)
        grid.addWidget(self.history, 0, 0)
        grid.addWidget(self.intermediate, 0, 1)
        grid.addWidget(self.importance, 1, 0)
        grid.addWidget(self.parallel, 1, 1)
        return page

    def fixed_charts(self) -> list[StudyChart]:
        """Every chart except the slices (whose number follows the parameters)."""
        return [
            self.history,
            self.intermediate,
            self.importance,
            self.parallel,
            self.contour.plot,
            self.pareto,
        ]

    def all_charts(self) -> list[StudyChart]:
        """Every chart, slices included (made for the parameters seen so far)."""
        return [*self.fixed_charts(), *self._slice_charts()]

    def _slice_charts(self) -> list[StudyChart]:
        return list(self.slices.ensure_charts())

    def set_view(self, view: StudyView | None) -> None:
        """Show another study (None: none)."""
        self.view = view
        self.selected = None
        self.slices.set_view(view)
        for chart in self.fixed_charts():
            chart.set_view(view)
        self.refresh()

    def refresh(self) -> None:
        """Redraw the visible charts whose study changed since they last drew."""
        if self.view is None:
            return
        multi = self.view.n_objectives > 1
        self.setTabEnabled(self.pareto_index, multi)
        self.contour.sync_params(list(self.view.params))
        for chart in self.visible_charts():
            chart.refresh()

    def redraw_all(self) -> None:
        """Redraw every chart now, shown or not (the benchmark's "full redraw")."""
        if self.view is None:
            return
        self.contour.sync_params(list(self.view.params))
        for chart in self.all_charts():
            chart.redraw()

    def visible_charts(self) -> list[StudyChart]:
        """The charts on the current sub-tab."""
        page = self.currentWidget()
        if page is self.slices:
            return self._slice_charts()
        if page is self.contour:
            return [self.contour.plot]
        if page is self.pareto:
            return [self.pareto]
        return [self.history, self.intermediate, self.importance, self.parallel]

    def select(self, row: int | None) -> None:
        """Highlight one trial in every chart."""
        self.selected = row
        for chart in self.all_charts():
            chart.select(row)
