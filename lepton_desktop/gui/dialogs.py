"""Message boxes that never block the event loop (``open()``, not ``exec()``).

Errors a user caused (LeptonError) show their own message; anything else is a bug,
shown with its traceback under "Show Details…".
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from lepton_desktop.core.errors import LeptonError
from lepton_desktop.gui.tasks import report_unexpected


def show_error(parent: QWidget | None, title: str, text: str, detail: str = "") -> QMessageBox:
    """Show an error box (window-modal, asynchronous) and return it."""
    ok = QMessageBox.StandardButton.Ok
    box = QMessageBox(QMessageBox.Icon.Critical, title, text, ok, parent)
    box.setObjectName("errorBox")
    if detail:
        box.setDetailedText(detail)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def show_exception(parent: QWidget | None, title: str, exc: BaseException) -> QMessageBox:
    """Show an exception: its message if the user caused it, else a bug report."""
    if isinstance(exc, LeptonError):
        return show_error(parent, title, str(exc))
    detail = report_unexpected(exc)
    text = f"Something went wrong inside Lepton Desktop: {exc.__class__.__name__}: {exc}"
    return show_error(parent, title, text, detail)


def ask(
    parent: QWidget | None,
    title: str,
    text: str,
    yes_text: str,
    on_yes: Callable[[], None],
    on_no: Callable[[], None] | None = None,
) -> QMessageBox:
    """Ask a yes/no question without blocking; ``on_yes`` or ``on_no`` runs after."""
    box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.NoButton,
                      parent)
    box.setObjectName("questionBox")
    yes = box.addButton(yes_text, QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(yes)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def finished() -> None:
        if box.clickedButton() is yes:
            on_yes()
        elif on_no is not None:
            on_no()

    box.finished.connect(finished)
    box.open()
    return box
