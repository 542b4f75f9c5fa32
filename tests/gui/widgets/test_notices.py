"""What tabs tell the user with: the inline banner, notifications, and actions whose
tooltips name their shortcuts."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QMainWindow, QWidget
from pytestqt.qtbot import QtBot

from lepton_desktop.gui.widgets.actions import make_action
from lepton_desktop.gui.widgets.banner import MessageBanner
from lepton_desktop.gui.widgets.notifier import Notifier

pytestmark = pytest.mark.gui


def test_banner_shows_a_message_at_its_level_until_dismissed(qtbot: QtBot) -> None:
    banner = MessageBanner()
    qtbot.addWidget(banner)
    assert banner.isHidden()
    banner.show_message("Import failed: no such file", "error")
    assert (banner.text, banner.level) == ("Import failed: no such file", "error")
    assert banner.isVisible()
    banner.show_message("Imported iris", "success")
    assert banner.level == "success"
    banner.hide()  # what its ✕ button does
    assert banner.isHidden()


def test_notifier_falls_back_to_the_status_bar_without_a_tray(qtbot: QtBot) -> None:
    window = QMainWindow()
    qtbot.addWidget(window)
    child = QWidget(window)
    window.setCentralWidget(child)
    where = Notifier(child).notify("Run 3 finished", "Run 3 (iris:1, mlp) finished.")
    assert window.statusBar().currentMessage() == "Run 3 (iris:1, mlp) finished."
    assert where in ("status bar", "tray")  # offscreen has no tray; a desktop may


def test_actions_name_their_shortcut_in_the_tooltip(qtbot: QtBot) -> None:
    tab = QWidget()
    qtbot.addWidget(tab)
    start = make_action(tab, "&Start", "Run the study", "Ctrl+Shift+R")
    more = make_action(tab, "Run &More", "Run more trials")
    assert start.toolTip().startswith("Run the study (") and "R" in start.toolTip()
    assert start.statusTip() == "Run the study"
    assert more.toolTip() == "Run more trials"
    assert tab.actions() == [start, more]
