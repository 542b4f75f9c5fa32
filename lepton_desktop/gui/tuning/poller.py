"""The poller that keeps the shown study's view current.

:class:`StudyPoller` reads only the trials that are new or were unfinished
(``core/tuning/reading.py``) and merges them into a StudyView.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from lepton_desktop.core.store.optuna_trials import OptunaStudy
from lepton_desktop.core.tuning import reading
from lepton_desktop.core.tuning.study_view import StudyChange, StudyView
from lepton_desktop.gui.session import ProjectSession
from lepton_desktop.gui.widgets.tick_poller import TickPoller


class StudyPoller(TickPoller):
    """Keeps one study's :class:`StudyView` current by incremental reads.

    Args:
        parent: the owner.
    """

    updated = Signal(object)  # StudyChange, after the view merged it
    INTERVAL_MS = 1000

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.view: StudyView | None = None
        self.rows_fetched = 0
        self._generation = 0

    def set_session(self, session: ProjectSession | None) -> None:
        """Start over for another project (or none)."""
        self.session = session
        self.show(None)

    def show(self, study: OptunaStudy | None) -> StudyView | None:
        """Follow this study (None: none); its trials are read at once."""
        self.timer.stop()
        self._generation += 1  # a read in flight for the previous study is dropped
        self._pending = self._again = False
        self.view = StudyView(study) if study is not None else None
        if self.view is not None:
            self.poll()
        return self.view

    def set_running(self, running: bool) -> None:
        """Poll on the timer (the tab is visible and trials may come) or not."""
        super().set_running(running and self.view is not None)

    def _ask(self, session: ProjectSession) -> None:
        view = self.view
        if view is None:
            return
        self._pending = True
        cursor, generation = view.cursor(), self._generation
        session.query(
            lambda p: reading.read_delta(p.ctx, cursor),
            lambda delta: self._on_read(generation, delta),
            lambda exc: self._on_failed(generation, exc),
            self,
        )

    def _on_read(self, generation: int, delta: reading.StudyDelta) -> None:
        if generation != self._generation or self.view is None:
            return
        self._answered()
        self.rows_fetched += delta.rows_fetched
        change: StudyChange = self.view.apply(delta)
        self.updated.emit(change)
        self._ask_again_if_wanted()

    def _on_failed(self, generation: int, exc: BaseException) -> None:
        # A busy file, or a study deleted meanwhile: the next tick tries again.
        if generation == self._generation:
            self._failed("study", exc)
