"""When things go wrong, and what the Help menu tells: the crash dialog, the log, the
diagnostics, the About dialog with its licences, and the self-test run from the menu."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import qWarning
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import QDialog
from pytestqt.qtbot import QtBot

from lepton_desktop.core import faults
from lepton_desktop.core.system.logs import CRASH_NAME, LOG_NAME, LogFiles, start_logging
from lepton_desktop.gui.crash import CrashDialog, CrashReporter
from lepton_desktop.gui.help import AboutDialog, SelfTestDialog
from lepton_desktop.gui.main_window import MainWindow

pytestmark = pytest.mark.gui


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[LogFiles]:
    files = start_logging(tmp_path / "logs")
    yield files
    files.close()


@pytest.fixture
def reporter(window: MainWindow, logs: LogFiles) -> Iterator[CrashReporter]:
    hook = CrashReporter(logs.folder, lambda: window)
    hook.install()
    yield hook
    hook.uninstall()
    if hook.dialog is not None:
        hook.dialog.close()


def _boom() -> None:
    raise ValueError("the slot failed on purpose")


@pytest.mark.qt_no_exception_capture
def test_an_exception_in_a_slot_shows_the_dialog_and_the_app_goes_on(
    qtbot: QtBot, window: MainWindow, reporter: CrashReporter, logs: LogFiles
) -> None:
    action = QAction("Fail", window)
    action.triggered.connect(_boom)
    action.trigger()
    qtbot.waitUntil(lambda: window.findChild(CrashDialog, "crashDialog") is not None)
    dialog = window.findChild(CrashDialog, "crashDialog")
    assert dialog.isVisible()
    assert "ValueError: the slot failed on purpose" in dialog.headline.text()
    assert str(logs.folder) in dialog.headline.text()
    assert "in _boom" in dialog.details.toPlainText()  # the traceback
    logs.handler.flush()
    logged = logs.log.read_text(encoding="utf-8")
    assert "unhandled exception" in logged and "the slot failed on purpose" in logged
    # A second error while the dialog is open is counted in it, not a second window.
    action.trigger()
    assert len(window.findChildren(CrashDialog)) == 1 and dialog.occurrences == 2
    assert "2 errors so far" in dialog.headline.text()
    dialog.copy_button.click()
    assert "in _boom" in QGuiApplication.clipboard().text()
    # The window still works: its menus answer, its theme switches.
    window.theme_actions["dark"].trigger()
    assert window.theme.effective == "dark"
    dialog.close()
    window.theme_actions["light"].trigger()
    assert window.theme.effective == "light"


def test_qt_messages_go_to_the_log(reporter: CrashReporter, logs: LogFiles) -> None:
    qWarning("a warning from Qt's side")
    logs.handler.flush()
    assert "WARNING qt: a warning from Qt's side" in logs.log.read_text(encoding="utf-8")


def test_the_log_rotates_and_keeps_a_bounded_number_of_files(tmp_path: Path) -> None:
    files = start_logging(tmp_path / "rot", max_bytes=2_000, backups=2)
    try:
        for i in range(200):
            logging.getLogger("lepton_desktop.test").info("line %d of a long session", i)
    finally:
        files.close()
    names = sorted(p.name for p in files.folder.iterdir())
    assert names == [CRASH_NAME, LOG_NAME, f"{LOG_NAME}.1", f"{LOG_NAME}.2"]
    assert all((files.folder / n).stat().st_size <= 2_100 for n in names if n != CRASH_NAME)
    assert "line 199 of a long session" in files.log.read_text(encoding="utf-8")


def test_a_native_crash_leaves_its_stack_in_the_crash_log(tmp_path: Path) -> None:
    script = ("import faulthandler, pathlib, sys\n"
              "from lepton_desktop.core.system.logs import start_logging\n"
              "start_logging(pathlib.Path(sys.argv[1]))\nfaulthandler._sigsegv()")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "crash")],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert proc.returncode != 0
    crash = (tmp_path / "crash" / CRASH_NAME).read_text(encoding="utf-8")
    assert "Segmentation fault" in crash and 'File "<string>"' in crash


@pytest.mark.slow
def test_about_shows_versions_and_licences_and_diagnostics_are_copied(
    qtbot: QtBot, window: MainWindow, tmp_project: Path
) -> None:
    dialog = window.help.show_about()
    assert isinstance(dialog, AboutDialog) and dialog.isVisible()
    qtbot.waitUntil(lambda: "torch:" in dialog.versions.toPlainText(), timeout=120_000)
    shown = dialog.versions.toPlainText()
    for field in ("lepton-desktop:", "python:", "qt:", "PySide6-Essentials:", "os:", "gpu:",
                  "project schema:"):  # fmt: skip
        assert field in shown, field
    licences = dialog.show_licences()
    text = licences.findChild(type(dialog.versions)).toPlainText()
    assert "torch" in text.splitlines() and "Apache" in text
    licences.close()
    dialog.close()
    window.open_path(tmp_project)
    qtbot.waitUntil(lambda: window.session is not None and window.session.is_open)
    window.help.diagnostics_action.trigger()  # the versions are known: copied at once
    copied = QGuiApplication.clipboard().text()
    import torch

    for line in (f"torch: {torch.__version__}", f"open project: {tmp_project.resolve()}",
                 "qt: ", "gpu: ", "os: ", "python: ", "project schema: "):  # fmt: skip
        assert line in copied, line
    assert "Diagnostics copied" in window.statusBar().currentMessage()


@pytest.mark.slow
def test_the_self_test_runs_from_the_help_menu_and_names_a_failed_step(
    qtbot: QtBot, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(faults.ENV, "after-claim:train")  # its training worker dies
    window.help.selftest_action.trigger()
    dialog = window.findChild(QDialog, "selfTestDialog")
    assert isinstance(dialog, SelfTestDialog)
    qtbot.waitUntil(lambda: dialog.exit_code is not None, timeout=240_000)
    assert dialog.exit_code == 1
    assert dialog.lines[0].startswith("ok   create project")
    assert any(line.startswith("FAIL train in a worker") for line in dialog.lines)
    assert "Failed." in dialog.status.text() and "train in a worker" in dialog.status.text()
    dialog.close()
