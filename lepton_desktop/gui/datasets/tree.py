"""The tree of datasets and their versions, with lineage in the tooltips."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeWidget, QTreeWidgetItem, QWidget

from lepton_desktop.core.entities import DatasetVersion
from lepton_desktop.gui.icons import icon, kind_icon

_ROLE = Qt.ItemDataRole.UserRole
_KEYS_SHOWN = ("method", "removed", "filled", "fractions", "seed", "columns", "kind", "classes")


def describe_operation(op: dict[str, Any]) -> str:
    """One line for an operation of a version's lineage ("fill: method mean, filled 3")."""
    details = []
    for key in _KEYS_SHOWN:
        if key in op:
            value = op[key]
            if isinstance(value, list | dict) and len(value) > 4:
                value = f"{len(value)} items"
            details.append(f"{key} {value}")
    return f"{op.get('op', '?')}: {', '.join(details)}" if details else str(op.get("op", "?"))


def lineage_tooltip(version: DatasetVersion, refs: dict[int, str]) -> str:
    """The tooltip of a version: size, parent, operations, source and date."""
    created = dt.datetime.fromtimestamp(version.created_at).strftime("%Y-%m-%d %H:%M")
    lines = [
        f"<b>{version.ref}</b> ({version.kind})",
        f"{version.n_rows:,} rows × {len(version.columns)} columns",
    ]
    if version.parent_id is not None:
        lines.append(f"Made from: {refs.get(version.parent_id, 'a deleted version')}")
    lines += [f"• {describe_operation(op)}" for op in version.operations]
    lines += [f"Source: {version.source}", f"Created: {created}"]
    return "<br>".join(lines)


class DatasetTree(QTreeWidget):
    """Datasets (kind icon, name) over their versions (number, rows).

    Args:
        parent: the parent widget.
    """

    versionSelected = Signal(object)  # DatasetVersion | None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderLabels(["Dataset", "Rows"])
        self.setColumnCount(2)
        self.setUniformRowHeights(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.header().setStretchLastSection(False)
        self.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.setToolTip("")
        self._versions: dict[int, DatasetVersion] = {}
        self.itemSelectionChanged.connect(self._on_selection_changed)

    def set_versions(
        self, versions: Iterable[DatasetVersion], select_id: int | None = None
    ) -> None:
        """Show ``versions``, keeping the selection (or selecting ``select_id``)."""
        versions = list(versions)
        current = self.selected_version()
        wanted = select_id if select_id is not None else (current.id if current else None)
        self._versions = {v.id: v for v in versions}
        refs = {v.id: v.ref for v in versions}
        self.blockSignals(True)
        self.clear()
        item_for = self._fill(versions, refs)
        self.blockSignals(False)
        target = item_for.get(wanted) if wanted in item_for else self._first_version_item()
        if target is not None:
            self.setCurrentItem(target)
        self._on_selection_changed()

    def _fill(
        self, versions: list[DatasetVersion], refs: dict[int, str]
    ) -> dict[int, QTreeWidgetItem]:
        groups: dict[str, QTreeWidgetItem] = {}
        item_for: dict[int, QTreeWidgetItem] = {}
        for version in versions:
            group = groups.get(version.name)
            if group is None:
                group = groups[version.name] = QTreeWidgetItem(self, [version.name, ""])
                group.setIcon(0, kind_icon(version.kind))
                group.setToolTip(0, f"{version.name}: {version.kind} dataset")
            child = QTreeWidgetItem(group, [f"version {version.version}", f"{version.n_rows:,}"])
            child.setIcon(0, icon("version"))
            child.setData(0, _ROLE, version.id)
            child.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            tip = lineage_tooltip(version, refs)
            child.setToolTip(0, tip)
            child.setToolTip(1, tip)
            item_for[version.id] = child
        for group in groups.values():
            group.setExpanded(True)
            count = group.childCount()
            group.setText(1, f"{count} version{'s' if count != 1 else ''}")
        return item_for

    def _first_version_item(self) -> QTreeWidgetItem | None:
        top = self.topLevelItem(0)
        return top.child(top.childCount() - 1) if top is not None and top.childCount() else None

    def selected_version(self) -> DatasetVersion | None:
        """The selected version; a selected dataset means its latest version."""
        item = self.currentItem()
        if item is None:
            return None
        if item.parent() is None and item.childCount():
            item = item.child(item.childCount() - 1)
        return self._versions.get(item.data(0, _ROLE))

    def version_count(self) -> int:
        """How many versions are listed."""
        return len(self._versions)

    def _on_selection_changed(self) -> None:
        self.versionSelected.emit(self.selected_version())
