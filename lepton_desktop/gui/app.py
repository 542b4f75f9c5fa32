"""Starting the GUI: the QApplication, the main window, and what to open first."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QSettings, QTimer
from PySide6.QtWidgets import QApplication, QWidget

from lepton_desktop import __version__
from lepton_desktop.gui.icons import app_icon
from lepton_desktop.gui.main_window import MainWindow
from lepton_desktop.gui.settings import AppSettings

ORGANIZATION = "Lepton"
APPLICATION = "Lepton Desktop"
USAGE = "usage: lepton-desktop [PROJECT.lepton | --demo]"
#: Set to ``print`` (or ``quit``: print, then exit) to have the app write
#: :data:`FIRST_PAINT_MARKER` on stderr once its window is first painted (the start-up
#: bench and tests time launches with it).
FIRST_PAINT_ENV = "LEPTON_FIRST_PAINT"
FIRST_PAINT_MARKER = "lepton-desktop: first paint"


def create_app() -> QApplication:
    """The QApplication (reused if one exists), named for QSettings, Fusion style."""
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "lepton-desktop"])
    assert isinstance(app, QApplication)
    app.setOrganizationName(ORGANIZATION)
    app.setOrganizationDomain("lepton.invalid")
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName(APPLICATION)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("lepton-desktop")
    app.setStyle("Fusion")
    app.setWindowIcon(app_icon())
    return app


def parse_args(argv: list[str]) -> tuple[Path | None, bool]:
    """``(project path, open the demo)`` from the GUI's arguments.

    Raises:
        ValueError: with the usage line, for unknown options or extra arguments.
    """
    demo = "--demo" in argv
    rest = [a for a in argv if a != "--demo"]
    if any(a.startswith("-") for a in rest) or len(rest) > 1 or (demo and rest):
        raise ValueError(USAGE)
    return (Path(rest[0]) if rest else None), demo


def create_window(argv: list[str], settings: AppSettings | None = None) -> MainWindow:
    """Build the main window and start opening what ``argv`` names.

    Args:
        argv: a project path, ``--demo``, or nothing (the start page).
        settings: where preferences live (default: the app's QSettings).
    """
    path, demo = parse_args(argv)
    window = MainWindow(settings or AppSettings(QSettings()))
    if demo:
        window.open_demo()
    elif path is not None:
        window.open_path(path)
    return window


def run(argv: list[str]) -> int:
    """Run the GUI until its window closes; return the exit status."""
    try:
        parse_args(argv)
    except ValueError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    app = create_app()
    window = create_window(argv)
    probe = os.environ.get(FIRST_PAINT_ENV)
    if probe:
        _FirstPaint(window, quit_after=probe == "quit")
    window.show()
    return app.exec()


class _FirstPaint(QObject):
    """Writes :data:`FIRST_PAINT_MARKER` once ``window`` has been painted the first time."""

    def __init__(self, window: QWidget, quit_after: bool) -> None:
        super().__init__(window)
        self._window, self._quit_after = window, quit_after
        window.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """On the first paint event, report once the event loop is next free."""
        if event.type() == QEvent.Type.Paint:
            self._window.removeEventFilter(self)
            QTimer.singleShot(0, self._report)  # after this paint reached the screen
        return False

    def _report(self) -> None:
        sys.stderr.write(FIRST_PAINT_MARKER + "\n")
        sys.stderr.flush()
        if self._quit_after:
            QApplication.quit()
