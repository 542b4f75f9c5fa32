"""Pollers: one read at a time on a real session, and tabs that poll only while shown."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from lepton_desktop.gui.session import ProjectSession
from lepton_desktop.gui.widgets.tick_poller import TickPoller
from lepton_desktop.gui.widgets.visible_poller import VisiblePollingTab

pytestmark = pytest.mark.gui


class JobCounter(TickPoller):
    """Reads how many jobs the project holds (the smallest real poller)."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0
        self.answers: list[int] = []

    def _ask(self, session: ProjectSession) -> None:
        self._pending = True
        self.asked += 1
        session.query(lambda p: len(p.jobs()), self._on_read, owner=self)

    def _on_read(self, count: int) -> None:
        self._answered()
        self.answers.append(count)
        self._ask_again_if_wanted()


class CountingTab(VisiblePollingTab):
    """Records what the base class asks of a tab."""

    def __init__(self) -> None:
        super().__init__()
        self.caught_up = 0
        self.timer_states: list[bool] = []

    def _catch_up(self, session: ProjectSession) -> None:
        self.caught_up += 1

    def _update_timer(self) -> None:
        self.timer_states.append(self.isVisible())


def test_ticks_while_a_read_is_in_flight_make_one_more_read_not_a_pile(
    qtbot: QtBot, tmp_project: Path, open_session: Callable[[Path], ProjectSession]
) -> None:
    poller = JobCounter()
    poller.session = open_session(tmp_project)
    for _ in range(5):
        poller.poll()
    qtbot.waitUntil(lambda: poller.polls == 2, timeout=10_000)
    assert poller.asked == 2 and poller.answers == [0, 0]
    poller.set_running(True)
    assert poller.timer.isActive()
    poller.set_running(False)
    assert not poller.timer.isActive()


def test_a_hidden_tab_catches_up_when_shown_and_stops_when_hidden(
    qtbot: QtBot, tmp_project: Path, open_session: Callable[[Path], ProjectSession]
) -> None:
    tab = CountingTab()
    qtbot.addWidget(tab)
    tab.session = open_session(tmp_project)
    tab.refresh_if_needed()  # hidden: nothing is read
    assert tab.caught_up == 0
    tab.show()
    qtbot.waitExposed(tab)
    assert tab.caught_up == 1 and tab.timer_states[-1] is True
    tab.hide()
    assert tab.timer_states[-1] is False and tab.caught_up == 1
