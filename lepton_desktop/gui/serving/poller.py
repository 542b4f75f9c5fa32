"""Incremental polling of the server's deployment row and request log.

Each tick asks the DB thread, in one query, for the server's deployment (the newest
active one, else the one followed so far) and the log rows of the deployment viewed
(the one the user picked, else the server's) with ``id > last_seen``; a full batch
asks again at once (catching up a long log). Ticks never overlap. When the viewed
deployment changes (a new start, here or from the command line, or another pick),
the cursor starts over at 0.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import QObject, Signal

from lepton_desktop.gui.serving import ops
from lepton_desktop.gui.serving.ops import LogCursor, ServingUpdate
from lepton_desktop.gui.session import ProjectSession
from lepton_desktop.gui.widgets.tick_poller import TickPoller


class ServingPoller(TickPoller):
    """Reads what the server did since the last tick.

    Signals:
        deploymentChanged(object): another deployment's log (or none) is viewed from
            now on; what was shown of the old one should be cleared.
        updated(ServingUpdate): the deployments and the viewed log's newer rows.
    """

    deploymentChanged = Signal(object)
    updated = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cursor = LogCursor()

    @property
    def viewed_id(self) -> int | None:
        """The deployment whose log is shown (None: none yet)."""
        return self.cursor.log_id

    def set_session(self, session: ProjectSession | None) -> None:
        """Start over for another project (or none)."""
        self.timer.stop()
        self.session = session
        self.cursor = LogCursor()
        self._pending = self._again = False
        self.deploymentChanged.emit(None)

    def view(self, deployment_id: int | None) -> None:
        """Show this deployment's log from now on (None: the server's, following new
        starts), and read it now."""
        self.cursor = dataclasses.replace(self.cursor, pinned_id=deployment_id)
        self.poll()

    def _ask(self, session: ProjectSession) -> None:
        self._pending = True
        ops.poll(session, self.cursor, self._on_polled, self._on_failed, self)

    def _on_polled(self, update: ServingUpdate) -> None:
        self._answered()
        cursor = self.cursor
        viewed_id = update.viewed.id if update.viewed else None
        if viewed_id != cursor.log_id:
            cursor = dataclasses.replace(cursor, log_id=viewed_id, after_id=0)
            self.cursor = cursor
            self.deploymentChanged.emit(update.viewed)
        followed_id = update.deployment.id if update.deployment else None
        after_id = update.records[-1].id if update.records else cursor.after_id
        listed = update.listed if update.deployments is not None else cursor.listed
        self.cursor = dataclasses.replace(
            cursor, followed_id=followed_id, after_id=after_id, listed=listed
        )
        self.updated.emit(update)
        self._ask_again_if_wanted(len(update.records) >= ops.READ_LIMIT)

    def _on_failed(self, exc: BaseException) -> None:
        self._failed("serving", exc)
