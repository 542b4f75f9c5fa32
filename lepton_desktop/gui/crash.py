"""When something goes wrong: unhandled exceptions become a dialog, Qt's warnings a log line.

An exception nobody caught in a slot or an event handler reaches ``sys.excepthook``
(PySide6 reports it there and carries on with the event loop). :class:`CrashReporter`
logs it with its traceback, then shows :class:`CrashDialog`: what happened, where
the log is, a button that copies the details, and the app keeps running. One dialog
at a time: exceptions that follow while it is open (a failing timer repeats) are
logged and counted in it, never a pile of windows. Qt's own messages (warnings,
criticals) go to the same log through ``qInstallMessageHandler``.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import Qt, QtMsgType, QUrl, qInstallMessageHandler
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

_log = logging.getLogger("lepton_desktop.gui")
_qt_log = logging.getLogger("qt")
_QT_LEVELS = {
    QtMsgType.QtDebugMsg: logging.DEBUG,
    QtMsgType.QtInfoMsg: logging.INFO,
    QtMsgType.QtWarningMsg: logging.WARNING,
    QtMsgType.QtCriticalMsg: logging.ERROR,
    QtMsgType.QtFatalMsg: logging.CRITICAL,
}


class CrashDialog(QDialog):
    """What happened, where the log is, and the details to copy (non-modal).

    Args:
        summary: one line: the exception's type and message.
        details: the traceback (and what else a bug report needs).
        log_folder: where the log file is.
        parent: the active window, if any.
    """

    def __init__(self, summary: str, details: str, log_folder: Path,
                 parent: QWidget | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.setObjectName("crashDialog")
        self.setWindowTitle("Something Went Wrong")
        self.log_folder = log_folder
        self.occurrences = 1
        self.headline = QLabel(self)
        self.headline.setWordWrap(True)
        self.headline.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details = QPlainTextEdit(details, self)
        self.details.setReadOnly(True)
        self.details.setMinimumSize(560, 200)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        action = QDialogButtonBox.ButtonRole.ActionRole
        self.copy_button = buttons.addButton("Copy Details", action)
        self.folder_button = buttons.addButton("Open Log Folder", action)
        self.copy_button.clicked.connect(self.copy_details)
        self.folder_button.clicked.connect(lambda: open_folder(self.log_folder))
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.headline)
        layout.addWidget(self.details, 1)
        layout.addWidget(buttons)
        self._summary = summary
        self._show_headline()

    def repeat(self, summary: str) -> None:
        """Another unhandled exception while this dialog is open: count it."""
        self.occurrences += 1
        self._summary = summary
        self._show_headline()

    def copy_details(self) -> None:
        """Put the details on the clipboard, for a bug report."""
        QGuiApplication.clipboard().setText(self.details.toPlainText())

    def _show_headline(self) -> None:
        more = f" ({self.occurrences} errors so far)" if self.occurrences > 1 else ""
        self.headline.setText(
            f"<b>Lepton Desktop hit an unexpected error{more}:</b> {_escape(self._summary)}"
            "<p>The app keeps running; what you were doing may not have finished. The "
            f"details are in the log in <code>{_escape(str(self.log_folder))}</code>.</p>"
        )


class CrashReporter:
    """Installs the exception hook and the Qt message handler; shows one dialog at a time.

    Args:
        log_folder: where the log is (named in the dialog, opened by its button).
        parent: returns the window to put the dialog over (None: a top-level dialog).
    """

    def __init__(self, log_folder: Path, parent: Callable[[], QWidget | None]) -> None:
        self.log_folder = log_folder
        self._parent = parent
        self.dialog: CrashDialog | None = None
        self._previous_hook = sys.excepthook
        self._reporting = False

    def install(self) -> None:
        """Take over ``sys.excepthook`` and Qt's message output."""
        sys.excepthook = self.handle
        qInstallMessageHandler(_qt_message)

    def uninstall(self) -> None:
        """Give both back (tests)."""
        sys.excepthook = self._previous_hook
        qInstallMessageHandler(None)

    def handle(self, kind: type[BaseException], exc: BaseException,
               tb: TracebackType | None) -> None:  # fmt: skip
        """The exception hook: log, then show (or update) the dialog; never raise."""
        details = "".join(traceback.format_exception(kind, exc, tb))
        _log.error("unhandled exception\n%s", details.rstrip())
        if issubclass(kind, KeyboardInterrupt) or self._reporting:
            return  # Ctrl-C in a terminal; or the dialog itself failed: the log has it
        self._reporting = True
        try:
            self._show(f"{kind.__name__}: {exc}", details)
        except Exception:
            _log.exception("the error dialog could not be shown")
        finally:
            self._reporting = False

    def _show(self, summary: str, details: str) -> None:
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.repeat(summary)
            self.dialog.details.appendPlainText("\n" + details)
            return
        self.dialog = CrashDialog(summary, details, self.log_folder, self._parent())
        self.dialog.show()
        self.dialog.raise_()


def open_folder(folder: Path) -> bool:
    """Show ``folder`` in the system's file manager (made first if missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


def _qt_message(kind: QtMsgType, context: object, message: str) -> None:
    level = _QT_LEVELS.get(kind, logging.WARNING)
    _qt_log.log(level, "%s", message)
    if level >= logging.WARNING:
        sys.stderr.write(f"qt: {message}\n")  # as Qt itself would, for a terminal


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
