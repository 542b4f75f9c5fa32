"""Incremental polling of the server's deployment row and request log.

Each tick asks the DB thread, in one query, for the deployment shown (or the newest
active one) and its log rows with ``id > last_seen``; a full batch asks again at once
(catching up a long log). Ticks never overlap. When the shown deployment changes (a
new start, here or from the command line), the cursor starts over at 0.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from lepton_desktop.gui.serving import ops
from lepton_desktop.gui.serving.ops import ServingUpdate
from lepton_desktop.gui.session import ProjectSession
from lepton_desktop.gui.widgets.tick_poller import TickPoller


class ServingPoller(TickPoller):
    """Reads what the server did since the last tick.

    Signals:
        deploymentChanged(object): another deployment (or None) is shown from now on;
            what was shown of the old one should be cleared.
        updated(ServingUpdate): the deployment's row and its newer log rows.
    """

    deploymentChanged = Signal(object)
    updated = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.deployment_id: int | None = None
        self.after_id = 0

    def set_session(self, session: ProjectSession | None) -> None:
        """Start over for another project (or none)."""
        self.timer.stop()
        self.session = session
        self.deployment_id, self.after_id = None, 0
        self._pending = self._again = False
        self.deploymentChanged.emit(None)

    def _ask(self, session: ProjectSession) -> None:
        self._pending = True
        ops.poll(
            session, self.deployment_id, self.after_id, self._on_polled, self._on_failed, self
        )

    def _on_polled(self, update: ServingUpdate) -> None:
        self._answered()
        new_id = update.deployment.id if update.deployment else None
        if new_id != self.deployment_id:
            self.deployment_id, self.after_id = new_id, 0
            self.deploymentChanged.emit(update.deployment)
        if update.records:
            self.after_id = update.records[-1].id
        self.updated.emit(update)
        self._ask_again_if_wanted(len(update.records) >= ops.READ_LIMIT)

    def _on_failed(self, exc: BaseException) -> None:
        self._failed("serving", exc)
