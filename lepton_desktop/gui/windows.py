"""The app's windows: one per open project, and the one place that decides where a file opens.

Opening a project that a window already shows brings that window forward; otherwise
the project opens in a window that shows no project yet, or in a new window. The
single-instance server, the command line and (on macOS) the file-open event all go
through :meth:`WindowManager.open_project_path`. The manager is a child of the
QApplication, found with :func:`window_manager`: no module-level state.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Qt
from PySide6.QtWidgets import QApplication

from lepton_desktop.gui.main_window import MainWindow
from lepton_desktop.gui.settings import AppSettings


class WindowManager(QObject):
    """Creates, finds and forgets the main windows.

    Args:
        settings: where windows remember things (default: the app's QSettings).
        parent: the QApplication.
    """

    def __init__(self, settings: AppSettings | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("windowManager")
        self.settings = settings or AppSettings(QSettings())
        self.windows: list[MainWindow] = []
        self._asked: dict[Path, MainWindow] = {}  # path -> the window asked to open it

    def new_window(self) -> MainWindow:
        """A new main window, shown; it is forgotten once closed."""
        window = MainWindow(self.settings, lazy_tabs=True)
        window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        window.destroyed.connect(lambda *_: self._forget(window))
        # Opened or refused: from then on the window's session (or none) tells.
        window.opener.sessionOpened.connect(lambda *_: self._settled(window))
        window.opener.failed.connect(lambda *_: self._settled(window))
        self.windows.append(window)
        window.show()
        return window

    def open_project_path(self, path: Path) -> MainWindow:
        """Open the project at ``path``: the window that has it comes forward, else one opens it.

        Returns:
            The window that shows (or is opening) the project.
        """
        resolved = Path(path).resolve()
        window = self.window_of(resolved)
        if window is None:
            window = next((w for w in self.windows if self._is_free(w)), None) or self.new_window()
            self._asked[resolved] = window
            window.open_path(resolved)
        bring_forward(window)
        return window

    def open_demo(self) -> MainWindow:
        """Open the demo project (see :meth:`open_project_path`)."""
        from lepton_desktop import paths

        demo = paths.demo_project_path()
        if demo.exists():
            return self.open_project_path(demo)
        window = next((w for w in self.windows if self._is_free(w)), None) or self.new_window()
        window.open_demo()
        bring_forward(window)
        return window

    def window_of(self, path: Path) -> MainWindow | None:
        """The window showing (or asked to open) the project at ``path``, if any."""
        for window in self.windows:
            if window.session is not None and window.session.path == path:
                return window
        asked = self._asked.get(path)
        if asked in self.windows and asked.session is None:  # still opening it
            return asked
        return None

    def _is_free(self, window: MainWindow) -> bool:
        return window.session is None and window not in self._asked.values()

    def _settled(self, window: MainWindow) -> None:
        self._asked = {p: w for p, w in self._asked.items() if w is not window}

    def _forget(self, window: MainWindow) -> None:
        self.windows = [w for w in self.windows if w is not window]
        self._asked = {p: w for p, w in self._asked.items() if w is not window}


def window_manager() -> WindowManager:
    """The app's window manager (made on first use, as a child of the QApplication)."""
    app = QApplication.instance()
    manager = app.findChild(WindowManager, "windowManager")
    return manager if manager is not None else WindowManager(parent=app)


def bring_forward(window: MainWindow) -> None:
    """Show ``window`` un-minimized, on top, with the keyboard focus."""
    window.show()
    window.setWindowState(window.windowState() & ~Qt.WindowState.WindowMinimized)
    window.raise_()
    window.activateWindow()
