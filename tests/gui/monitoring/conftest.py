"""What the Monitoring tab's tests share: a tab shown on a session, its first read done."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from lepton_desktop.gui.monitoring.tab import MonitoringTab
from lepton_desktop.gui.session import ProjectSession


def shown_tab(qtbot: QtBot, session: ProjectSession) -> MonitoringTab:
    """A Monitoring tab on ``session``, shown, once its first read is on screen."""
    tab = MonitoringTab()
    qtbot.addWidget(tab)
    tab.set_session(session)
    tab.show()
    qtbot.waitUntil(lambda: tab.view is not None and tab.view.choice == tab.choice,
                    timeout=20_000)  # fmt: skip
    return tab
