"""Incremental polling of the server's deployment row and request log.

Each tick asks the DB thread, in one query, for the deployment shown (or the newest
active one) and its log rows with ``id > last_seen``; a full batch asks again at once
(catching up a long log). Ticks never overlap. When the shown deployment changes (a
new start, here or from the command line), the cursor starts over at 0.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, QTimer, Signal

from lepton_desktop.gui.session import ProjectSession
from lepton_desktop.gui.widgets import serving_ops as ops
from lepton_desktop.gui.widgets.serving_ops import ServingUpdate


class ServingPoller(QObject):
    """Reads what the server did since the last tick.

    Signals:
        deploymentChanged(object): another deployment (or None) is shown from now on;
            what was shown of the old one should be cleared.
        updated(ServingUpdate): the deployment's row and its newer log rows.
    """

    deploymentChanged = Signal(object)
    updated = Signal(object)
    INTERVAL_MS = 500

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session: ProjectSession | None = None
        self.deployment_id: int | None = None
        self.after_id = 0
        self.polls = 0
        self._pending = False
        self._again = False
        self.timer = QTimer(self, interval=self.INTERVAL_MS, timeout=self.poll)

    def set_session(self, session: ProjectSession | None) -> None:
        """Start over for another project (or none)."""
        self.timer.stop()
        self.session = session
        self.deployment_id, self.after_id = None, 0
        self._pending = self._again = False
        self.deploymentChanged.emit(None)

    def set_running(self, running: bool) -> None:
        """Tick on the timer (while the tab is visible) or not."""
        if running and not self.timer.isActive():
            self.timer.start()
        elif not running:
            self.timer.stop()

    def poll(self) -> None:
        """Ask for news now (or as soon as the request in flight returns)."""
        if self.session is None or not self.session.is_open:
            return
        if self._pending:
            self._again = True
            return
        self._pending = True
        ops.poll(
            self.session, self.deployment_id, self.after_id, self._on_polled, self._on_failed, self
        )

    def _on_polled(self, update: ServingUpdate) -> None:
        self._pending = False
        self.polls += 1
        new_id = update.deployment.id if update.deployment else None
        if new_id != self.deployment_id:
            self.deployment_id, self.after_id = new_id, 0
            self.deploymentChanged.emit(update.deployment)
        if update.records:
            self.after_id = update.records[-1].id
        self.updated.emit(update)
        if self._again or len(update.records) >= ops.READ_LIMIT:
            self._again = False
            self.poll()

    def _on_failed(self, exc: BaseException) -> None:
        # A busy file: the next tick tries again (never a dialog every 500 ms).
        self._pending = False
        sys.stderr.write(f"lepton-desktop: serving poll failed: {exc}\n")
