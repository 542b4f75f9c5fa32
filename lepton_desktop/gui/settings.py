"""What the app remembers between runs (QSettings): recent files, theme, window layout.

The QSettings object is passed in, so tests use a throwaway file and two windows
never share hidden global state.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QMainWindow, QMenu

MAX_RECENT = 10
THEMES = ("system", "light", "dark")


class AppSettings:
    """Typed access to the app's QSettings.

    Args:
        store: where values live (``QSettings()`` in the app, an INI file in tests).
    """

    def __init__(self, store: QSettings) -> None:
        self.store = store

    def recent_files(self) -> list[Path]:
        """Recently opened projects, most recent first."""
        value = self.store.value("recentFiles", [])
        items = [value] if isinstance(value, str) else list(value or [])
        return [Path(p) for p in items if p]

    def add_recent(self, path: Path) -> None:
        """Put ``path`` first in the recent list."""
        path = Path(path).resolve()
        items = [p for p in self.recent_files() if p != path]
        self._set_recent([path, *items][:MAX_RECENT])

    def remove_recent(self, path: Path) -> None:
        """Drop ``path`` from the recent list (it no longer opens)."""
        self._set_recent([p for p in self.recent_files() if p != Path(path).resolve()])

    def clear_recent(self) -> None:
        """Forget every recent file."""
        self._set_recent([])

    def _set_recent(self, paths: list[Path]) -> None:
        self.store.setValue("recentFiles", [str(p) for p in paths])
        self.store.sync()

    def theme(self) -> str:
        """``system``, ``light`` or ``dark``."""
        value = str(self.store.value("theme", "system"))
        return value if value in THEMES else "system"

    def set_theme(self, theme: str) -> None:
        """Remember the theme."""
        self.store.setValue("theme", theme)
        self.store.sync()

    def save_window(self, window: QMainWindow) -> None:
        """Remember the window's geometry and dock/toolbar state."""
        self.store.setValue("window/geometry", window.saveGeometry())
        self.store.setValue("window/state", window.saveState())
        self.store.sync()

    def restore_window(self, window: QMainWindow) -> bool:
        """Restore what :meth:`save_window` kept; False when there was nothing."""
        geometry = self.store.value("window/geometry")
        state = self.store.value("window/state")
        if isinstance(state, QByteArray):
            window.restoreState(state)
        return isinstance(geometry, QByteArray) and window.restoreGeometry(geometry)


def fill_recent_menu(menu: QMenu, settings: AppSettings, opener: Callable[[Path], None]) -> None:
    """Fill File → Open Recent: the recent projects (missing ones disabled), Clear Menu."""
    menu.clear()
    for path in settings.recent_files():
        action = menu.addAction(str(path))
        action.setEnabled(path.exists())
        action.triggered.connect(lambda checked, p=path: opener(p))
    if menu.isEmpty():
        menu.addAction("No recent projects").setEnabled(False)
    else:
        menu.addSeparator()
        menu.addAction("Clear Menu", settings.clear_recent)
