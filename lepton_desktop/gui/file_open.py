"""Files the operating system hands to the running app (macOS: a double-click in Finder).

On macOS a document opened from Finder does not arrive in ``argv``: the system sends the
application a ``QFileOpenEvent`` (at launch and while it runs). The handler below turns
that event into the same call a path on the command line gets, so both ways open a
project identically (errors shown, the file left as it was). On Linux and Windows the
desktop passes the path on the command line (``Exec=lepton-desktop %f``); the event never
comes and the handler costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QFileOpenEvent
from PySide6.QtWidgets import QApplication


class FileOpenHandler(QObject):
    """An application-wide event filter that opens each ``QFileOpenEvent``'s file."""

    def __init__(self, open_path: Callable[[Path], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._open_path = open_path

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Open the file of a ``FileOpen`` event; let every other event through."""
        if event.type() != QEvent.Type.FileOpen or not isinstance(event, QFileOpenEvent):
            return False
        path = _local_path(event)
        if path is None:
            return False  # a URL that is not a local file: not ours to open
        self._open_path(path)
        return True


def install_file_open_handler(
    owner: QObject, open_path: Callable[[Path], None]
) -> FileOpenHandler:
    """Route the application's ``QFileOpenEvent`` to ``open_path`` while ``owner`` lives.

    The handler is ``owner``'s child (the main window's): when the window goes, so does
    the filter, and no event reaches a deleted window.
    """
    app = QApplication.instance()
    assert app is not None, "create the QApplication first"
    handler = FileOpenHandler(open_path, parent=owner)
    app.installEventFilter(handler)
    return handler


def _local_path(event: QFileOpenEvent) -> Path | None:
    # file() is empty when the system sent a URL; only local files are projects.
    if event.file():
        return Path(event.file())
    url = event.url()
    return Path(url.toLocalFile()) if url.isLocalFile() else None
