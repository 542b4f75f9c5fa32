"""Incremental polling of training runs for the live charts and the runs table.

Each tick asks the DB thread, in one query, for the rows of the active runs and for
the metric and system rows of the shown runs newer than their cursors
(``after_id``), then hands the points to the charts and redraws them once. A shown
run whose status was read as ended (its metrics read after that, so complete) is
not asked again until it becomes active again (resumed). Ticks never overlap: a
request made while one is in flight runs when it returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from PySide6.QtCore import QObject, Signal

from lepton_desktop.gui.session import ProjectSession
from lepton_desktop.gui.training import ops
from lepton_desktop.gui.training.charts import TrainingCharts
from lepton_desktop.gui.training.ops import Cursor, RunUpdate
from lepton_desktop.gui.training.run_format import is_active
from lepton_desktop.gui.widgets.tick_poller import TickPoller


class RunPoller(TickPoller):
    """Feeds :class:`TrainingCharts` and reports run rows, on a timer while runs are active.

    Args:
        charts: where the points go.
        parent: the owner.
    """

    updated = Signal(list)  # list[RunUpdate], after the charts got their points

    def __init__(self, charts: TrainingCharts, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.charts = charts
        self.cursors: dict[int, Cursor] = {}
        self.complete: set[int] = set()
        self.shown: list[int] = []
        self.active: set[int] = set()

    def set_session(self, session: ProjectSession | None) -> None:
        """Start over for another project (or none)."""
        self.timer.stop()
        self.forget(list(self.cursors))
        self.session, self.shown, self.active = session, [], set()
        self._pending = self._again = False
        self.charts.show_runs([])

    def show_runs(self, run_ids: Sequence[int]) -> None:
        """Overlay these runs; read at once those never read (or not read to the end)."""
        self.shown = list(run_ids)
        self.charts.show_runs(self.shown)
        if any(r not in self.complete for r in self.shown):
            self.poll()

    def set_active(self, run_ids: Iterable[int]) -> None:
        """The runs whose rows change by themselves (their charts are read again too)."""
        self.active = set(run_ids)
        self.complete -= self.active

    def forget(self, run_ids: Iterable[int]) -> None:
        """Drop deleted runs' points and cursors."""
        ids = list(run_ids)
        self.charts.drop_runs(ids)
        for run_id in ids:
            self.cursors.pop(run_id, None)
            self.complete.discard(run_id)

    def _ask(self, session: ProjectSession) -> None:
        requests = self._requests()
        if not requests:
            return
        self._pending = True
        ops.poll_runs(session, requests, self._on_polled, self._on_failed, self)

    def _requests(self) -> dict[int, Cursor | None]:
        requests: dict[int, Cursor | None] = dict.fromkeys(self.active)
        for run_id in self.shown:
            if run_id not in self.complete:
                requests[run_id] = self.cursors.get(run_id, Cursor())
        return requests

    def _on_polled(self, updates: list[RunUpdate]) -> None:
        self._answered()
        for update in updates:
            self._take(update)
        self.charts.redraw()
        self.updated.emit(updates)
        self._ask_again_if_wanted()

    def _take(self, update: RunUpdate) -> None:
        run_id = update.run.id
        if not update.with_points:
            return
        self.charts.add(update)
        self.cursors[run_id] = update.cursor
        if not is_active(update.run):
            self.complete.add(run_id)

    def _on_failed(self, exc: BaseException) -> None:
        # A busy file or a run deleted meanwhile: the next tick tries again.
        self._failed("run", exc)
