"""The selected trial: its parameters, its reported values, and its run's learning curves.

The reported (intermediate) values come from the study's view; when the trial trained
a run (its ``run_id`` user attribute), that run's per-epoch metrics are read on the
DB thread (``project.runs.metrics``) and drawn beside them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from lepton_desktop.core.tuning.reading import STATES
from lepton_desktop.core.tuning.study_view import StudyView
from lepton_desktop.gui.tuning.charts import ACCENT, WARM
from lepton_desktop.gui.tuning.ops import Curves
from lepton_desktop.gui.widgets.charts import IntegerAxis, LineChart, ThemedPlot

#: ``loader(run_id, on_done)`` reads a run's per-epoch metrics off the GUI thread.
CurveLoader = Callable[[int, Callable[[Curves], None]], None]


class TrialCurve(QWidget):
    """One trial in detail (nothing selected: a hint).

    Args:
        parent: the parent widget.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loader: CurveLoader | None = None
        self.row: int | None = None
        self.run_id: int | None = None
        self.header = QLabel("Select a trial (in the table or a chart) to see its curves.", self)
        self.header.setWordWrap(True)
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.reported = ThemedPlot(self, "Reported values")
        self.reported.getPlotItem().setAxisItems({"bottom": IntegerAxis("bottom")})
        self.reported.getPlotItem().showGrid(x=True, y=True, alpha=0.15)
        self.reported.setLabel("bottom", "step (epoch)")
        self.reported.apply_palette()
        self.curve = self.reported.plot(
            pen=pg.mkPen(ACCENT, width=2),
            symbol="o",
            symbolSize=5,
            symbolBrush=ACCENT,
            symbolPen=None,
        )
        self.run_chart = LineChart(self, "Run loss per epoch")
        self.run_chart.setLabel("bottom", "epoch")
        charts = QHBoxLayout()
        charts.setSpacing(6)
        charts.addWidget(self.reported, 1)
        charts.addWidget(self.run_chart, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.header)
        layout.addLayout(charts, 1)

    def show_trial(
        self, view: StudyView | None, row: int | None, retrained: tuple[int, str] | None = None
    ) -> None:
        """Show one trial of ``view`` (None: none); its run's curves are read if it has one.

        Args:
            view: the study.
            row: the trial's row in ``view``.
            retrained: ``(run id, title)`` of a run that trained this trial's settings
                again (the best trial's registered model), shown when the trial has no
                run of its own.
        """
        self.row = row
        if view is None or row is None or row >= view.n:
            self.header.setText("Select a trial (in the table or a chart) to see its curves.")
            self.curve.setData([], [])
            self._show_run(None, {})
            return
        self.header.setText(describe(view, row))
        steps, values = view.curve(row)
        pruned = STATES[int(view.states[row])] == "PRUNED"
        self.curve.setPen(pg.mkPen(WARM if pruned else ACCENT, width=2))
        self.curve.setData(steps, values)
        self.reported.setLabel("left", view.objective_name(0))
        self.reported.set_title(
            f"Trial {int(view.numbers[row])}: reported {view.objective_name(0)}"
        )
        run_id, title = int(view.run_ids[row]), ""
        if run_id < 0 and retrained is not None:
            run_id, title = retrained
        if run_id < 0:
            self._show_run(None, {})
        elif self.loader is not None:
            self.loader(run_id, lambda curves: self._on_curves(row, run_id, curves, title))

    def _on_curves(self, row: int, run_id: int, curves: Curves, title: str) -> None:
        if row == self.row:  # not another trial selected meanwhile
            self._show_run(run_id, curves, title)

    def _show_run(self, run_id: int | None, curves: Curves, title: str = "") -> None:
        self.run_id = run_id
        epochs = (
            np.unique(np.concatenate([x for x, _ in curves.values()])) if curves else np.zeros(0)
        )
        series = {}
        for name, (x, y) in sorted(curves.items()):
            full = np.full(len(epochs), np.nan)
            full[np.searchsorted(epochs, x)] = y
            series[name] = full
        self.run_chart.show_series(epochs, series, dates=False)
        self.run_chart.setVisible(run_id is not None)  # trials trained without a run row
        if run_id is None:
            title = "No training run"
        elif not curves:
            title = f"Run {run_id}: no metrics"
        else:
            title = title or f"Run {run_id} loss per epoch"
        self.run_chart.set_title(title)


def describe(view: StudyView, row: int) -> str:
    """One line about a trial: number, state, value(s), parameters, run."""
    state = STATES[int(view.states[row])].capitalize()
    values = ", ".join(
        f"{view.objective_name(k)} {view.values[row, k]:.5g}"
        for k in range(view.n_objectives)
        if np.isfinite(view.values[row, k])
    )
    params = ", ".join(
        f"{name}={column.text(row)}" for name, column in view.params.items() if column.text(row)
    )
    run = f" · run {int(view.run_ids[row])}" if view.run_ids[row] >= 0 else ""
    parts = [f"<b>Trial {int(view.numbers[row])}</b> · {state}"]
    if values:
        parts.append(values)
    return " · ".join(parts) + run + (f"<br>{params}" if params else "")
