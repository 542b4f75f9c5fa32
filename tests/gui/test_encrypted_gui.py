"""Encrypted projects in the window: the passphrase asked on opening, File → Encrypt/Decrypt."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox
from pytestqt.qtbot import QtBot

from lepton_desktop.core.project import Project
from lepton_desktop.core.store import keys
from lepton_desktop.gui.encryption import PassphraseDialog
from lepton_desktop.gui.main_window import MainWindow

PASSPHRASE = "correct horse battery"
SCREENSHOTS = Path(os.environ.get("LEPTON_SCREENSHOTS", ""))


pytestmark = pytest.mark.usefixtures("forgotten_keys")


def _dialog(window: MainWindow) -> PassphraseDialog | None:
    found = [d for d in window.findChildren(PassphraseDialog) if d.isVisible()]
    return found[0] if found else None


def _give(qtbot: QtBot, window: MainWindow, text: str, again: str | None = None) -> None:
    qtbot.waitUntil(lambda: _dialog(window) is not None, timeout=10_000)
    dialog = _dialog(window)
    assert dialog is not None
    dialog.field.setText(text)
    if again is not None:
        dialog.again.setText(again)
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert ok.isEnabled()
    ok.click()


def _opened(window: MainWindow, path: Path) -> bool:
    return (
        window.session is not None
        and window.session.path == path.resolve()
        and (window.session.is_open)
    )


def test_opening_an_encrypted_project_asks_its_passphrase(
    qtbot: QtBot, window: MainWindow, iris_project: Path
) -> None:
    Project.encrypt_file(iris_project, PASSPHRASE)
    keys._KEYS.clear()
    os.environ.pop(keys.KEYS_ENV, None)
    before = iris_project.read_bytes()
    window.open_path(iris_project)
    _give(qtbot, window, "not the passphrase")
    qtbot.waitUntil(lambda: _dialog(window) is not None and _dialog(window).error.isVisible(),
                    timeout=20_000)  # fmt: skip
    dialog = _dialog(window)
    assert dialog is not None and "does not open" in dialog.error.text()
    assert window.session is None and iris_project.read_bytes() == before  # nothing written
    if SCREENSHOTS.name:  # the README's picture
        qtbot.wait(200)
        dialog.grab().save(str(SCREENSHOTS / "passphrase-dialog.png"))
    _give(qtbot, window, PASSPHRASE)
    qtbot.waitUntil(lambda: _opened(window, iris_project), timeout=20_000)
    tree = window.datasets_tab.tree
    qtbot.waitUntil(lambda: tree.version_count() == 1, timeout=10_000)
    assert window.decrypt_action.isEnabled() and not window.encrypt_action.isEnabled()


def test_encrypt_then_decrypt_from_the_file_menu(
    qtbot: QtBot, window: MainWindow, iris_project: Path
) -> None:
    window.open_path(iris_project)
    qtbot.waitUntil(lambda: _opened(window, iris_project), timeout=20_000)
    assert window.encrypt_action.isEnabled() and not window.decrypt_action.isEnabled()
    window.encrypt_action.trigger()
    qtbot.waitUntil(lambda: _dialog(window) is not None, timeout=10_000)
    dialog = _dialog(window)
    assert dialog is not None
    dialog.field.setText("short")
    dialog.again.setText("short")  # too short: refused in the dialog itself
    assert not dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()
    _give(qtbot, window, PASSPHRASE, again=PASSPHRASE)
    qtbot.waitUntil(lambda: Project.is_encrypted(iris_project) and _opened(window, iris_project)
                    and window.decrypt_action.isEnabled(), timeout=60_000)  # fmt: skip
    assert b"setosa" not in iris_project.read_bytes()
    window.decrypt_action.trigger()
    qtbot.waitUntil(lambda: _question(window) is not None, timeout=10_000)
    box = _question(window)
    assert box is not None
    next(b for b in box.buttons() if b.text() == "Decrypt").click()
    qtbot.waitUntil(lambda: not Project.is_encrypted(iris_project)
                    and _opened(window, iris_project), timeout=60_000)  # fmt: skip
    assert window.encrypt_action.isEnabled()
    with Project.open(iris_project) as project:
        assert project.dataset("iris").n_rows == 150


def _question(window: MainWindow) -> QMessageBox | None:
    box = window.findChild(QMessageBox, "questionBox")
    return box if box is not None and box.isVisible() else None
