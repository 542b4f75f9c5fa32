"""Desktop notifications: the system tray's balloon where there is a tray, else the
window's status bar (offscreen, some Linux desktops)."""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QMainWindow, QSystemTrayIcon, QWidget

from lepton_desktop.gui.icons import app_icon

SHOW_MS = 10_000


class Notifier(QObject):
    """Tells the user something happened while they may be looking elsewhere.

    Args:
        widget: a widget of the window whose status bar is the fallback.
    """

    def __init__(self, widget: QWidget) -> None:
        super().__init__(widget)
        self._widget = widget
        self._tray: QSystemTrayIcon | None = None
        self._hide_timer = QTimer(self, singleShot=True, timeout=self._hide_tray)
        self.last: tuple[str, str, str] | None = None  # (title, text, where), for tests

    def notify(self, title: str, text: str, ok: bool = True) -> str:
        """Show ``text`` in the status bar, and in the tray where there is one.

        Returns:
            ``tray`` when the tray showed it, else ``status bar``.
        """
        window = self._widget.window()
        if isinstance(window, QMainWindow):
            window.statusBar().showMessage(text, 3 * SHOW_MS)
        where = "status bar"
        if QSystemTrayIcon.isSystemTrayAvailable() and QSystemTrayIcon.supportsMessages():
            self._tray_message(title, text, ok)
            where = "tray"
        self.last = (title, text, where)
        return where

    def _tray_message(self, title: str, text: str, ok: bool) -> None:
        if self._tray is None:
            self._tray = QSystemTrayIcon(app_icon(), self)
            self._tray.setToolTip("Lepton Desktop")
            self._tray.messageClicked.connect(self._raise_window)
        icons = QSystemTrayIcon.MessageIcon
        icon = icons.Information if ok else icons.Warning
        self._tray.show()
        self._tray.showMessage(title, text, icon, SHOW_MS)
        self._hide_timer.start(SHOW_MS + 2000)

    def _hide_tray(self) -> None:
        if self._tray is not None:
            self._tray.hide()

    def _raise_window(self) -> None:
        window = self._widget.window()
        window.showNormal()
        window.raise_()
        window.activateWindow()
