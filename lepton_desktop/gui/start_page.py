"""What the window shows when no project is open: New, Open, Open Demo, recent files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop.gui.icons import app_icon

_ROLE = Qt.ItemDataRole.UserRole


class StartPage(QWidget):
    """Buttons to start, and the recent projects (double-click or Enter opens one).

    Args:
        parent: the parent widget.
    """

    newRequested = Signal()
    openRequested = Signal()
    demoRequested = Signal()
    recentActivated = Signal(Path)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("startPage")
        self.new_button = QPushButton("New Project…", self, clicked=self.newRequested.emit)
        self.open_button = QPushButton("Open Project…", self, clicked=self.openRequested.emit)
        self.demo_button = QPushButton("Open Demo", self, clicked=self.demoRequested.emit)
        self.new_button.setToolTip("Create an empty project file (Ctrl+N)")
        self.open_button.setToolTip("Open a .lepton project file (Ctrl+O)")
        self.demo_button.setToolTip("A project with sample tables, images and a time series")
        self.recent = QListWidget(self)
        self.recent.setObjectName("recentList")
        self.recent.setIconSize(QSize(20, 20))
        self.recent.itemActivated.connect(self._on_item_activated)
        self._build()

    def _build(self) -> None:
        logo = QLabel(self)
        logo.setPixmap(app_icon().pixmap(72, 72))
        title = QLabel("Lepton Desktop", self)
        title.setObjectName("startTitle")
        subtitle = QLabel("Data, training, tuning and serving in one project file.", self)
        subtitle.setObjectName("startSubtitle")
        heading = QVBoxLayout()
        heading.addWidget(title)
        heading.addWidget(subtitle)
        top = QHBoxLayout()
        top.addWidget(logo)
        top.addLayout(heading, 1)
        buttons = QHBoxLayout()
        for button in (self.new_button, self.open_button, self.demo_button):
            button.setMinimumHeight(34)
            buttons.addWidget(button)
        buttons.addStretch(1)
        hint = QLabel("Tip: drop a .lepton file here to open it.", self)
        hint.setObjectName("startHint")
        column = QVBoxLayout()
        column.addLayout(top)
        column.addSpacing(12)
        column.addLayout(buttons)
        column.addSpacing(18)
        column.addWidget(QLabel("<b>Recent projects</b>", self))
        column.addWidget(self.recent, 1)
        column.addWidget(hint)
        outer = QHBoxLayout(self)
        outer.addStretch(1)
        outer.addLayout(column, 4)
        outer.addStretch(1)

    def set_recent(self, paths: Sequence[Path]) -> None:
        """List ``paths``; files that no longer exist are shown disabled."""
        self.recent.clear()
        for path in paths:
            item = QListWidgetItem(app_icon(), f"{path.name}    —    {path.parent}")
            item.setData(_ROLE, str(path))
            item.setToolTip(str(path))
            if not path.exists():
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
                item.setToolTip(f"{path} (not found)")
            self.recent.addItem(item)
        if not paths:
            item = QListWidgetItem("No recent projects yet.")
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.recent.addItem(item)

    def _on_item_activated(self, item: QListWidgetItem) -> None:
        path = item.data(_ROLE)
        if path:
            self.recentActivated.emit(Path(path))
