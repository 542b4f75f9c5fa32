"""macOS hands a double-clicked file to the running app as a QFileOpenEvent."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QObject, QUrl
from PySide6.QtGui import QFileOpenEvent
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from lepton_desktop.gui.file_open import install_file_open_handler
from lepton_desktop.gui.main_window import MainWindow

pytestmark = pytest.mark.gui


def _post_file_open(event: QFileOpenEvent) -> None:
    # As the system does: to the application object, through its event queue.
    QApplication.postEvent(QApplication.instance(), event)


def test_a_file_open_event_opens_the_project(
    qtbot: QtBot, window: MainWindow, tmp_project: Path
) -> None:
    install_file_open_handler(window, window.open_path)
    _post_file_open(QFileOpenEvent(str(tmp_project)))
    qtbot.waitUntil(lambda: window.session is not None and window.session.is_open, timeout=10_000)
    assert window.session is not None and window.session.path == tmp_project.resolve()
    assert window.windowTitle() == f"{tmp_project.name} — Lepton Desktop"


def test_a_file_url_opens_the_project_too(
    qtbot: QtBot, window: MainWindow, tmp_project: Path
) -> None:
    install_file_open_handler(window, window.open_path)
    _post_file_open(QFileOpenEvent(QUrl.fromLocalFile(str(tmp_project))))
    qtbot.waitUntil(lambda: window.session is not None, timeout=10_000)
    assert tmp_project.name in window.windowTitle()


def test_a_file_that_is_not_a_project_shows_an_error_and_stays_as_it_was(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    foreign = tmp_path / "files" / "foreign.lepton"
    foreign.parent.mkdir()
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE notes (text)")
    conn.commit()
    conn.close()
    before, files = foreign.read_bytes(), sorted(foreign.parent.iterdir())
    install_file_open_handler(window, window.open_path)
    _post_file_open(QFileOpenEvent(str(foreign)))

    def error_box() -> QMessageBox | None:
        box = window.findChild(QMessageBox, "errorBox")
        return box if box is not None and box.isVisible() else None

    qtbot.waitUntil(lambda: error_box() is not None, timeout=10_000)
    assert "not a Lepton project" in error_box().text()  # type: ignore[union-attr]
    assert foreign.read_bytes() == before
    assert sorted(foreign.parent.iterdir()) == files  # no -wal, no -shm, no backup
    assert window.session is None and window.windowTitle() == "Lepton Desktop"


def test_a_remote_url_is_left_to_others(window: MainWindow) -> None:
    opened: list[Path] = []
    handler = install_file_open_handler(window, opened.append)
    event = QFileOpenEvent(QUrl("https://example.invalid/p.lepton"))
    assert handler.eventFilter(QApplication.instance(), event) is False
    assert opened == []


def test_the_handler_goes_with_its_owner(qtbot: QtBot, window: MainWindow) -> None:
    # A filter outliving its window would call a deleted window's open_path.
    owner = QObject()
    opened: list[Path] = []
    handler = install_file_open_handler(owner, opened.append)
    assert handler.parent() is owner
    del owner  # Python held the only reference: the owner and its child go now
    assert not shiboken6.isValid(handler)
    _post_file_open(QFileOpenEvent("/nonexistent/p.lepton"))
    QApplication.processEvents()
    assert opened == []
