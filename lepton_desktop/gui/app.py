"""Starting the GUI: the QApplication, the main window, and what to open first."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QWidget

from lepton_desktop import __version__, paths
from lepton_desktop.core.system.logs import start_logging
from lepton_desktop.gui.crash import CrashReporter
from lepton_desktop.gui.file_open import install_file_open_handler
from lepton_desktop.gui.icons import app_icon
from lepton_desktop.gui.instance import InstanceServer, hand_over, instance_name
from lepton_desktop.gui.main_window import MainWindow
from lepton_desktop.gui.windows import WindowManager, bring_forward, window_manager

ORGANIZATION = "Lepton"
APPLICATION = "Lepton Desktop"
USAGE = "usage: lepton-desktop [PROJECT.lepton | --demo]"
#: Set to ``print`` (or ``quit``: print, then exit) to have the app write
#: :data:`FIRST_PAINT_MARKER` on stderr once its window is first painted (the start-up
#: bench and tests time launches with it).
FIRST_PAINT_ENV = "LEPTON_FIRST_PAINT"
FIRST_PAINT_MARKER = "lepton-desktop: first paint"
_log = logging.getLogger("lepton_desktop.gui")


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


def open_project_path(path: Path) -> MainWindow:
    """Open the project at ``path`` in this app, the way a double-click should.

    The window that shows it comes forward; otherwise it opens in a window without a
    project, or in a new one. Later launches (through the single-instance socket)
    and the macOS file-open event call this.
    """
    return window_manager().open_project_path(path)


def run(argv: list[str]) -> int:
    """Run the GUI until its last window closes; return the exit status.

    A running instance of this user's app is asked to open the file first: when it
    takes it, this process exits at once (status 0) without a window of its own.
    """
    try:
        path, demo = parse_args(argv)
    except ValueError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    app = create_app()
    name = instance_name()
    if hand_over(path, demo, name):
        sys.stderr.write("lepton-desktop: handed over to the running instance\n")
        return 0
    logs = start_logging(paths.user_log_dir())
    # An exception no slot caught: logged, shown in a dialog, and the app goes on.
    reporter = CrashReporter(logs.folder, QApplication.activeWindow)
    reporter.install()
    _log.info("started %s (pid %d)", __version__, os.getpid())
    manager = window_manager()
    server = InstanceServer(name, manager)
    server.openRequested.connect(lambda p, d: _open_requested(manager, p, d))
    if not server.listen():
        _log.warning("not the single instance: %s", server.server.errorString())
    window = _first_window(manager, path, demo)
    # macOS: a double-click in Finder sends the file as an event, not an argument; it
    # opens like a later launch's file does, for as long as the app runs.
    install_file_open_handler(QApplication.instance(), open_project_path)
    probe = os.environ.get(FIRST_PAINT_ENV)
    if probe:
        _FirstPaint(window, quit_after=probe == "quit")
    return app.exec()


def _first_window(manager: WindowManager, path: Path | None, demo: bool) -> MainWindow:
    if demo:
        return manager.open_demo()
    if path is not None:
        return manager.open_project_path(path)
    return manager.new_window()


def _open_requested(manager: WindowManager, path: Path | None, demo: bool) -> None:
    # Another launch: open its file, the demo, or bring a window forward.
    if path is not None:
        manager.open_project_path(path)
    elif demo:
        manager.open_demo()
    elif manager.windows:
        bring_forward(manager.windows[-1])
    else:
        manager.new_window()


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
            # Closed, not quit: its project is closed the usual way before the app ends.
            self._window.close()
