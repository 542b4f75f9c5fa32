"""Tab actions: a QAction with a status tip, and a tooltip that names its shortcut."""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget


def make_action(parent: QWidget, text: str, tip: str, shortcut: str | None = None) -> QAction:
    """An action of the tab with a tooltip that names its shortcut."""
    action = QAction(text, parent)
    action.setStatusTip(tip)
    if shortcut:
        action.setShortcut(QKeySequence(shortcut))
        tip = f"{tip} ({QKeySequence(shortcut).toString(QKeySequence.SequenceFormat.NativeText)})"
    action.setToolTip(tip)
    parent.addAction(action)
    return action
