"""Starting the GUI: the QApplication, the main window, and what to open first."""

from __future__ import annotations

import sys
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from lepton_desktop import __version__
from lepton_desktop.gui.file_open import install_file_open_handler
from lepton_desktop.gui.icons import app_icon
from lepton_desktop.gui.main_window import MainWindow
from lepton_desktop.gui.settings import AppSettings

ORGANIZATION = "Lepton"
APPLICATION = "Lepton Desktop"
USAGE = "usage: lepton-desktop [PROJECT.lepton | --demo]"


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
    pg.setConfigOptions(antialias=True)
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
    install_file_open_handler(window, window.open_path)  # macOS: a double-click in Finder
    window.show()
    return app.exec()
