"""What the GUI's pollers share: a timer, and reads of the project that never overlap.

The training, serving and tuning pollers each ask the session's DB thread for what
changed since their cursors. A tick while a read is in flight is not sent: it is
remembered and sent as soon as the answer is in, so a slow read never piles up.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, QTimer

from lepton_desktop.gui.session import ProjectSession


class TickPoller(QObject):
    """Polls the project on a timer, one read at a time.

    Subclasses implement :meth:`_ask`; their answer slots call :meth:`_answered` first
    and :meth:`_ask_again_if_wanted` last, their error slots :meth:`_failed`.

    Args:
        parent: the owner.
    """

    INTERVAL_MS = 500

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session: ProjectSession | None = None
        self.polls = 0
        self._pending = False
        self._again = False
        self.timer = QTimer(self, interval=self.INTERVAL_MS, timeout=self.poll)

    def set_running(self, running: bool) -> None:
        """Tick on the timer (while the tab is visible and something is live) or not."""
        if running and not self.timer.isActive():
            self.timer.start()
        elif not running:
            self.timer.stop()

    def poll(self) -> None:
        """Ask for what changed (now, or as soon as the read in flight returns)."""
        session = self.session
        if session is None or not session.is_open:
            return
        if self._pending:
            self._again = True
            return
        self._ask(session)

    def _ask(self, session: ProjectSession) -> None:
        """Send one read to ``session``, setting ``_pending`` first (or send nothing).

        Abstract hook: subclasses implement it.
        """
        raise NotImplementedError

    def _answered(self) -> None:
        self._pending = False
        self.polls += 1

    def _ask_again_if_wanted(self, more: bool = False) -> None:
        # A tick came while the read was in flight, or the answer was cut at its limit.
        if self._again or more:
            self._again = False
            self.poll()

    def _failed(self, what: str, exc: BaseException) -> None:
        # A busy file: the next tick tries again (never a dialog every tick).
        self._pending = False
        sys.stderr.write(f"lepton-desktop: {what} poll failed: {exc}\n")
