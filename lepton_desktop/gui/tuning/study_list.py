"""The study list (left of the Tuning tab) and the selected study's summary.

The list is rebuilt from :class:`~lepton_desktop.gui.tuning.ops.StudyEntry`
rows keeping the selection (by name); the summary shows the study's settings, its
progress (finished trials of those planned) and the best value so far, which the
tab takes from the trials it has read, so it moves with every poll.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QProgressBar,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop.gui.tuning.ops import StudyEntry

COLUMNS = ("Study", "Status", "Trials")
_STATUS_COLORS = {
    "running": "#3a7bd5",
    "finished": "#2a9d8f",
    "failed": "#d62828",
    "stopped": "#e9a23b",
    "external": "#8a8f98",
}


class StudyList(QTableWidget):
    """Studies, newest first; one selectable.

    Args:
        parent: the parent widget.
    """

    studySelected = Signal(object)  # the selected StudyEntry, or None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.entries: list[StudyEntry] = []
        self.setHorizontalHeaderLabels(COLUMNS)
        self.verticalHeader().hide()
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setWordWrap(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.itemSelectionChanged.connect(self._on_selection)

    def set_entries(self, entries: Sequence[StudyEntry]) -> None:
        """Show these studies; the selected one stays selected (the first if none was)."""
        chosen = self.selected_name()
        self.blockSignals(True)
        self.entries = list(entries)
        self.setRowCount(len(self.entries))
        for row, entry in enumerate(self.entries):
            self._fill(row, entry)
        self.blockSignals(False)
        names = [e.name for e in self.entries]
        if chosen in names:
            self.selectRow(names.index(chosen))
        elif self.entries:
            self.selectRow(0)
        self._on_selection()

    def _fill(self, row: int, entry: StudyEntry) -> None:
        planned = f" / {entry.planned}" if entry.planned is not None else ""
        texts = (entry.name, entry.status, f"{entry.finished}{planned}")
        for column, text in enumerate(texts):
            item = QTableWidgetItem(text)
            if column == 1:
                item.setForeground(QColor(_STATUS_COLORS.get(entry.status, "#8a8f98")))
            if column == 2:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            item.setToolTip(_tooltip(entry))
            self.setItem(row, column, item)

    def select_name(self, name: str) -> None:
        """Select a study by name (if listed)."""
        for row, entry in enumerate(self.entries):
            if entry.name == name:
                self.selectRow(row)

    def selected_name(self) -> str | None:
        """The selected study's name."""
        entry = self.selected_entry()
        return entry.name if entry else None

    def selected_entry(self) -> StudyEntry | None:
        """The selected study."""
        rows = self.selectionModel().selectedRows()
        return self.entries[rows[0].row()] if rows and rows[0].row() < len(self.entries) else None

    def _on_selection(self) -> None:
        self.studySelected.emit(self.selected_entry())


def _tooltip(entry: StudyEntry) -> str:
    if entry.record is None:
        return "An Optuna study made outside the app, in this project file (read only)"
    study = entry.record
    return (
        f"{study.dataset} · {study.arch.upper()} · {study.sampler}/{study.pruner} · "
        f"{', '.join(study.objectives)}"
    )


class StudySummary(QWidget):
    """The selected study's settings, progress and best value.

    Args:
        parent: the parent widget.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = QLabel(self)
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.best = QLabel(self)
        self.best.setWordWrap(True)
        self.best.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 4)
        layout.addWidget(self.text)
        layout.addWidget(self.progress)
        layout.addWidget(self.best)
        self.show_entry(None)

    def show_entry(
        self,
        entry: StudyEntry | None,
        finished: int | None = None,
        running: int = 0,
        best: str = "",
    ) -> None:
        """Show a study (None: none); ``finished``/``running`` from the trials read."""
        if entry is None:
            self.text.setText("No study selected. Create one with New Study… (Ctrl+Shift+N).")
            self.progress.hide()
            self.best.setText("")
            return
        done = entry.finished if finished is None else finished
        self.text.setText(_settings(entry))
        planned = entry.planned
        self.progress.setVisible(planned is not None)
        if planned:
            self.progress.setRange(0, planned)
            self.progress.setValue(min(done, planned))
            busy = f", {running} running" if running else ""
            self.progress.setFormat(f"{done} / {planned} trials{busy}")
        model = entry.record.best_model if entry.record else None
        self.best.setText(best + (f"<br>Model: <b>{model}</b>" if model else ""))


def _settings(entry: StudyEntry) -> str:
    if entry.record is None:
        return (
            f"<b>{entry.name}</b><br>An Optuna study stored in this project file by "
            "another program; its trials are shown read-only."
        )
    study = entry.record
    objectives = " and ".join(
        f"{o} ({d[:3]})" for o, d in zip(study.objectives, study.directions, strict=False)
    )
    where = ""
    if study.storage is not None:
        where = "<br>Storage: external (shared)"
        if entry.optuna is None:
            where += "; its trials show here once it is finished and copied into the project file"
    error = f"<br><span style='color:#d64545'>{study.error}</span>" if study.error else ""
    return (
        f"<b>{study.name}</b> · {study.status}<br>{study.dataset} · {study.arch.upper()} · "
        f"{study.sampler} sampler · {study.pruner} pruner<br>Optimizes {objectives}"
        f"{where}{error}"
    )
