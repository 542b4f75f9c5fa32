"""A tab that reads the project only while it is shown (Anki's ``refresh_if_needed``).

Hidden, such a tab only marks itself dirty when the session reports a change; shown
again, it catches up and polls while what it shows is live. Each tab says what
catching up reads and when its poller runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import QWidget

if TYPE_CHECKING:
    from lepton_desktop.gui.session import ProjectSession


class VisiblePollingTab(QWidget):
    """A tab that catches up when shown and polls only while visible.

    Subclasses set ``session`` and implement :meth:`_catch_up` (read what went stale,
    poll once) and :meth:`_update_timer` (run the poller while ``isVisible()`` and
    something is live; ``isVisible()`` is already false when hidden).
    """

    session: ProjectSession | None = None

    def refresh_if_needed(self) -> None:
        """Catch up on what changed while the tab was hidden."""
        if self.session is None or not self.isVisible():
            return
        self._catch_up(self.session)
        self._update_timer()

    def showEvent(self, event: QShowEvent) -> None:
        """Catch up, and poll again while something is live."""
        super().showEvent(event)
        self.refresh_if_needed()

    def hideEvent(self, event: QHideEvent) -> None:
        """Stop polling while hidden."""
        super().hideEvent(event)
        self._update_timer()

    def _catch_up(self, session: ProjectSession) -> None:
        """Read from ``session`` what went stale while hidden, and poll once.

        Abstract hook: subclasses implement it.
        """
        raise NotImplementedError

    def _update_timer(self) -> None:
        """Start or stop the poller.

        Abstract hook: subclasses implement it.
        """
        raise NotImplementedError
