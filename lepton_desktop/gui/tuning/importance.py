"""The hyperparameter-importance chart, computed off the GUI thread and cached.

Importances come from Optuna's PED-ANOVA evaluator on the completed trials
(``core/tuning/importance.py``). The view's columns are copied on the GUI thread and
the evaluation runs on the session's background pool; the result is kept until the
number of completed trials has grown materially (by :data:`GROWTH` or
:data:`MIN_NEW` trials), or every trial has ended, so a running study is not
re-evaluated on every poll.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QWidget

from lepton_desktop.core.tuning import importance
from lepton_desktop.core.tuning.reading import COMPLETE, UNFINISHED
from lepton_desktop.core.tuning.study_view import StudyView
from lepton_desktop.gui.tuning.charts import ACCENT, StudyChart

#: Recompute when the completed trials grew by this fraction ...
GROWTH = 0.10
#: ... or by this many trials, whichever is larger.
MIN_NEW = 5
#: ``runner(work, on_done, on_error)`` runs ``work`` off the GUI thread.
Runner = Callable[
    [Callable[[], Any], Callable[[Any], None], Callable[[BaseException], None]], None
]


class ImportanceChart(StudyChart):
    """Horizontal bars: each parameter's share of the objective's variation."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, "Hyperparameter importance")
        self.bars = pg.BarGraphItem(x0=[], y=[], height=0.6, width=[], brush=ACCENT, pen=None)
        self.addItem(self.bars)
        self.getPlotItem().showGrid(x=True, y=False, alpha=0.15)
        self.getPlotItem().getViewBox().setMouseEnabled(x=False, y=False)
        self.setLabel("bottom", "importance (PED-ANOVA)")
        self.runner: Runner | None = None
        self.importances: dict[str, float] = {}
        self.computed_for: tuple[str, int] | None = None  # (study, completed trials)
        self.computations = 0
        self.error = ""
        self._pending: tuple[str, int] | None = None
        self._again = False
        self._generation = 0  # results of computations started before a reset are dropped

    def set_runner(self, runner: Runner | None) -> None:
        """Where computations run (the session's background pool)."""
        self.runner = runner

    def reset(self) -> None:
        """Forget the bars and the cache (another study)."""
        self.importances, self.computed_for, self.error = {}, None, ""
        self._pending, self._again = None, False
        self._generation += 1
        self._show({})

    def draw(self, view: StudyView) -> None:
        """Show the cached importances; start a computation when they are out of date."""
        key = (view.study.name, view.count(COMPLETE))
        if self._stale(view, key):
            self._start(view, key)
        elif self.computed_for is None and self._pending is None:
            self.set_title(
                f"Hyperparameter importance (after {importance.MIN_TRIALS} completed trials)"
            )
        self._show(self.importances)

    def _stale(self, view: StudyView, key: tuple[str, int]) -> bool:
        if self.computed_for is None or self.computed_for[0] != key[0]:
            return key[1] >= importance.MIN_TRIALS
        done = self.computed_for[1]
        if key[1] == done:
            return False
        settled = view.count(*UNFINISHED) == 0
        return settled or key[1] - done >= max(MIN_NEW, GROWTH * done)

    def _start(self, view: StudyView, key: tuple[str, int]) -> None:
        if self.runner is None:
            return
        if self._pending is not None:
            self._again = True
            return
        self._pending = key
        data = importance.snapshot(view)  # copied here: the view changes on this thread
        self.set_title("Hyperparameter importance (computing…)")
        generation = self._generation
        self.runner(
            lambda: importance.compute(data),
            lambda result: self._on_done(generation, result),
            lambda exc: self._on_error(generation, exc),
        )

    def _on_done(self, generation: int, result: dict[str, float]) -> None:
        if generation != self._generation:
            return
        self.computed_for, self._pending = self._pending, None
        self.importances, self.error = result, ""
        self.computations += 1
        self._finish()

    def _on_error(self, generation: int, exc: BaseException) -> None:
        if generation != self._generation:
            return
        self.computed_for, self._pending = self._pending, None
        self.error = str(exc)
        self._finish()

    def _finish(self) -> None:
        n = self.computed_for[1] if self.computed_for else 0
        title = f"Hyperparameter importance ({n} completed trials)"
        self.set_title(f"Importance failed: {self.error}" if self.error else title)
        self._show(self.importances)
        if self._again and self.view is not None:
            self._again = False
            self.draw(self.view)

    def _show(self, values: dict[str, float]) -> None:
        names = list(values)[::-1]  # most important on top
        widths = np.array([values[n] for n in names], dtype=float)
        y = np.arange(len(names), dtype=float)
        self.bars.setOpts(x0=np.zeros(len(names)), y=y, width=widths, height=0.6)
        axis = self.getPlotItem().getAxis("left")
        axis.setTicks([list(enumerate(names))])
        # Wide enough for the longest name now: pyqtgraph only widens an axis after a
        # repaint, and skips the labels that do not fit meanwhile.
        metrics = QFontMetrics(axis.style.get("tickFont") or self.font())
        axis.setWidth(max([metrics.horizontalAdvance(n) for n in names], default=0) + 14)
        self.getPlotItem().layout.activate()
        if len(names):
            self.getPlotItem().setRange(
                xRange=(0, max(widths.max(), 1e-9) * 1.05),
                yRange=(-0.6, len(names) - 0.4),
                padding=0,
            )
