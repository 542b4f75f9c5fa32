"""Which models the server serves, and which ones it has loaded.

:class:`ModelPicker` lists the registered models with their versions and aliases,
all checked by default (the server then serves every model, new ones included).
:class:`LoadedModels` shows what the running server reports it loaded, with Promote
(point ``champion`` at the selected version) and Roll back (move ``champion`` to the
version before it); the server follows alias changes by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop.core.entities import ModelVersion
from lepton_desktop.gui.serving.ops import rollback_target

REF_ROLE = Qt.ItemDataRole.UserRole
_CHECKED, _UNCHECKED = Qt.CheckState.Checked, Qt.CheckState.Unchecked


def version_label(version: int, aliases: Sequence[str]) -> str:
    """``v2  (champion)``."""
    return f"v{version}" + (f"  ({', '.join(aliases)})" if aliases else "")


class ModelPicker(QTreeWidget):
    """Models (tri-state) and their versions, checkable; everything checked by default."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderLabels(["Models to serve", "Task"])
        self.setRootIsDecorated(True)
        self.setUniformRowHeights(True)
        self.header().setStretchLastSection(False)
        self.header().setSectionResizeMode(0, self.header().ResizeMode.Stretch)
        self.versions: list[ModelVersion] = []
        self._unchecked: set[str] = set()  # refs the user switched off (kept over refreshes)

    def set_versions(self, versions: Sequence[ModelVersion]) -> None:
        """List these versions, keeping the user's choices for those still there."""
        if self.topLevelItemCount():
            self._unchecked = set(self._refs(_UNCHECKED))
        self.versions = list(versions)
        self.clear()
        for name, group in groupby(self.versions, key=lambda v: v.name):
            mine = list(group)
            parent = QTreeWidgetItem(self, [name, mine[-1].task])
            parent.setFlags(
                parent.flags() | Qt.ItemFlag.ItemIsAutoTristate | Qt.ItemFlag.ItemIsUserCheckable
            )
            for version in mine:
                child = QTreeWidgetItem(
                    parent, [version_label(version.version, version.aliases), version.arch]
                )
                child.setFlags(child.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                child.setData(0, REF_ROLE, version.ref)
                child.setCheckState(0, _UNCHECKED if version.ref in self._unchecked else _CHECKED)
        self.expandAll()

    def selected(self) -> list[str]:
        """What to ask the server for: [] for everything, else model names and refs."""
        chosen: list[str] = []
        everything = True
        for i in range(self.topLevelItemCount()):
            item = self.topLevelItem(i)
            state = item.checkState(0)
            if state == _CHECKED:
                chosen.append(item.text(0))
                continue
            everything = False
            for j in range(item.childCount()):
                child = item.child(j)
                if child.checkState(0) == _CHECKED:
                    chosen.append(str(child.data(0, REF_ROLE)))
        return [] if everything else chosen

    def check_only(self, refs: Sequence[str]) -> None:
        """Check exactly these versions (``name:version``)."""
        for child in self._children():
            child.setCheckState(0, _CHECKED if child.data(0, REF_ROLE) in refs else _UNCHECKED)

    def _refs(self, state: Qt.CheckState) -> list[str]:
        return [str(c.data(0, REF_ROLE)) for c in self._children() if c.checkState(0) == state]

    def _children(self) -> list[QTreeWidgetItem]:
        items = []
        for i in range(self.topLevelItemCount()):
            parent = self.topLevelItem(i)
            items.extend(parent.child(j) for j in range(parent.childCount()))
        return items


class LoadedModels(QWidget):
    """The server's loaded models and versions, with Promote and Roll back.

    Signals:
        promoteRequested(str): make this ``name:version`` the champion.
        rollbackRequested(str): move this model's champion back one version.
    """

    promoteRequested = Signal(str)
    rollbackRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tree = QTreeWidget(self)
        self.tree.setHeaderLabels(["Model / version", "Aliases"])
        self.tree.setUniformRowHeights(True)
        self.tree.header().setSectionResizeMode(0, self.tree.header().ResizeMode.Stretch)
        self.tree.currentItemChanged.connect(lambda *_: self._update_buttons())
        self.promote = QPushButton("Promote", self)
        self.promote.setToolTip("Make the selected version its model's champion")
        self.rollback = QPushButton("Roll back", self)
        self.rollback.setToolTip("Move the champion back to the version before it")
        self.promote.clicked.connect(self._on_promote)
        self.rollback.clicked.connect(self._on_rollback)
        self.loaded: list[dict[str, Any]] = []
        buttons = QHBoxLayout()
        buttons.addWidget(self.promote)
        buttons.addWidget(self.rollback)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tree, 1)
        layout.addLayout(buttons)
        self.champions: set[str] = set()
        self.can_rollback: dict[str, bool] = {}
        self._update_buttons()

    def set_loaded(self, loaded: Sequence[dict[str, Any]]) -> None:
        """Show what the server reports (a list of ``{name, version, aliases}``)."""
        if list(loaded) == self.loaded:
            return
        current = self.current_ref()
        self.loaded = [dict(entry) for entry in loaded]
        self.tree.clear()
        ordered = sorted(self.loaded, key=lambda e: (str(e["name"]), int(e["version"])))
        for name, group in groupby(ordered, key=lambda e: str(e["name"])):
            parent = QTreeWidgetItem(self.tree, [name, ""])
            for entry in group:
                ref = f"{name}:{entry['version']}"
                default = bool(entry.get("default"))
                text = f"v{entry['version']}" + ("  (default)" if default else "")
                aliases = ", ".join(entry.get("aliases") or [])
                child = QTreeWidgetItem(parent, [text, aliases])
                child.setData(0, REF_ROLE, ref)
                if default:
                    child.setToolTip(0, f"Requests naming only {name!r} get this version")
                if ref == current:
                    self.tree.setCurrentItem(child)
        self.tree.expandAll()
        self._update_buttons()

    def set_registry(self, versions: Sequence[ModelVersion]) -> None:
        """The registry's aliases: they, not the server's last report, enable the buttons
        (the server catches up with an alias change a moment later)."""
        self.champions = {v.ref for v in versions if "champion" in v.aliases}
        names = {v.name for v in versions}
        self.can_rollback = {n: rollback_target(versions, n) is not None for n in names}
        self._update_buttons()

    def current_ref(self) -> str | None:
        """The selected ``name:version`` (None when a model row or nothing is selected)."""
        item = self.tree.currentItem()
        ref = item.data(0, REF_ROLE) if item is not None else None
        return str(ref) if ref else None

    def current_name(self) -> str | None:
        """The model of the selected row."""
        item = self.tree.currentItem()
        if item is None:
            return None
        return (item.parent() or item).text(0)

    def select(self, ref: str) -> None:
        """Select the row of ``name:version``."""
        for i in range(self.tree.topLevelItemCount()):
            parent = self.tree.topLevelItem(i)
            for j in range(parent.childCount()):
                if parent.child(j).data(0, REF_ROLE) == ref:
                    self.tree.setCurrentItem(parent.child(j))

    def _update_buttons(self) -> None:
        ref = self.current_ref()
        self.promote.setEnabled(ref is not None and ref not in self.champions)
        name = self.current_name()
        self.rollback.setEnabled(name is not None and self.can_rollback.get(name, False))

    def _on_promote(self) -> None:
        ref = self.current_ref()
        if ref is not None:
            self.promoteRequested.emit(ref)

    def _on_rollback(self) -> None:
        name = self.current_name()
        if name is not None:
            self.rollbackRequested.emit(name)
