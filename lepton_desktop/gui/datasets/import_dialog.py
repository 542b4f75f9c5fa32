"""The Import dialog: a file or an image folder, its name, kind, target and time column.

The source's header is read on the background pool (never on the GUI thread); the
kind is guessed from it and can be overridden. The dialog only gathers input: the
tab turns :meth:`ImportDialog.job_args` into an import job.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop.core.datasets.importing import guess_kind
from lepton_desktop.core.datasets.pii import sample_findings
from lepton_desktop.core.datasets.pii_found import Finding
from lepton_desktop.core.errors import LeptonError
from lepton_desktop.core.names import check_name

if TYPE_CHECKING:
    from lepton_desktop.gui.session import ProjectSession

KINDS = (
    ("tabular", "Table"),
    ("images", "Images (one folder per class)"),
    ("timeseries", "Time series"),
)
TIME_NAMES = ("date", "time", "timestamp", "datetime", "year", "month", "day", "period", "ds")
TARGET_NAMES = ("target", "label", "class", "y", "outcome")
DATA_FILTER = "Data files (*.csv *.tsv *.txt *.parquet *.pq *.npz);;All files (*)"
NONE = "(none)"
AUTO_TIME = "(first date column)"


@dataclasses.dataclass(frozen=True)
class SourceInfo:
    """What a source looks like: its guessed kind, columns and likely time columns."""

    kind: str
    columns: list[str]
    time_columns: list[str]
    #: Personal data found in the first rows (the import confirms it on all rows).
    pii: tuple[Finding, ...] = ()


def inspect_source(path: Path) -> SourceInfo:
    """Background pool: read the header and guess the kind. Raises LeptonError."""
    if guess_kind(path) == "images":
        return SourceInfo("images", [], [])
    from lepton_desktop.core.datasets.sources import TableSource  # pyarrow: not at start

    source = TableSource(path)
    try:
        fields = [(f.name, str(f.type)) for f in source.schema]
    finally:
        source.close()
    typed = [n for n, t in fields if t.startswith(("timestamp", "date", "time"))]
    named = [n for n, _ in fields if n.lower() in TIME_NAMES and n not in typed]
    time_columns = typed + named
    return SourceInfo(
        "timeseries" if time_columns else "tabular",
        [n for n, _ in fields],
        time_columns,
        tuple(sample_findings(path)),
    )


class ImportDialog(QDialog):
    """Choose what to import and how.

    Args:
        session: used to read the source's header off the GUI thread.
        existing: names of the project's datasets (importing under one adds a version).
        parent: the parent widget.
    """

    def __init__(
        self,
        session: ProjectSession,
        existing: Collection[str] = (),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import Data")
        self.setMinimumWidth(520)
        self._session = session
        self._existing = set(existing)
        self._info: SourceInfo | None = None
        self._error = ""
        self._generation = 0
        self._auto_name = ""
        self._build()
        self._debounce = QTimer(self, singleShot=True, interval=300, timeout=self._inspect)
        self._validate()

    def _build(self) -> None:
        self.source = QLineEdit(self)
        self.source.setPlaceholderText("a .csv, .tsv, .parquet or .npz file, or an image folder")
        self.source.textEdited.connect(lambda _: self._debounce.start())
        file_button = QPushButton("File…", self, clicked=self._choose_file)
        folder_button = QPushButton("Folder…", self, clicked=self._choose_folder)
        folder_button.setToolTip("An image folder: one sub-folder per class")
        row = QHBoxLayout()
        row.addWidget(self.source, 1)
        row.addWidget(file_button)
        row.addWidget(folder_button)
        self.name = QLineEdit(self, textEdited=lambda _: self._validate())
        self.kind = QComboBox(self)
        for value, text in KINDS:
            self.kind.addItem(text, value)
        self.kind.setToolTip("Guessed from the source; change it if the guess is wrong")
        self.kind.currentIndexChanged.connect(lambda _: self._on_kind_changed())
        self.target = QComboBox(self)
        self.target.setToolTip("The column a model learns to predict")
        self.time_column = QComboBox(self)
        self.time_column.setToolTip("Time series: the column that orders the rows")
        self.status = QLabel(self)
        self.status.setObjectName("formError")
        self.status.setWordWrap(True)
        self.pii_note = QLabel(self)
        self.pii_note.setObjectName("piiWarning")
        self.pii_note.setWordWrap(True)
        self.pii_note.hide()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Import")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("Source:", row)
        form.addRow("Name:", self.name)
        form.addRow("Kind:", self.kind)
        form.addRow("Target column:", self.target)
        form.addRow("Time column:", self.time_column)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.pii_note)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)

    # -- input ---------------------------------------------------------------------------

    def set_source(self, path: Path) -> None:
        """Fill in ``path`` and read its header (off the GUI thread)."""
        self.source.setText(str(path))
        self._inspect()

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a Data File", "", DATA_FILTER)
        if path:
            self.set_source(Path(path))

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Import an Image Folder")
        if path:
            self.set_source(Path(path))

    def _inspect(self) -> None:
        self._debounce.stop()
        self._generation += 1
        self._info, self._error = None, ""
        self.pii_note.hide()
        text = self.source.text().strip()
        self._default_name(Path(text).stem if text else "")
        if not text:
            self._validate()
            return
        generation = self._generation
        self.status.setText("Reading the source…")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)
        self._session.background(
            lambda: inspect_source(Path(text)),
            lambda info: self._on_inspected(generation, info, ""),
            lambda exc: self._on_inspected(generation, None, _message(exc)),
            owner=self,
        )

    def _on_inspected(self, generation: int, info: SourceInfo | None, error: str) -> None:
        if generation != self._generation:
            return  # the source changed meanwhile
        self._info, self._error = info, error
        self.pii_note.setText(pii_warning(info.pii) if info is not None else "")
        self.pii_note.setVisible(info is not None and bool(info.pii))
        if info is not None:
            self._fill_columns(info)
            self.kind.setCurrentIndex(self.kind.findData(info.kind))
        self._validate()

    def _fill_columns(self, info: SourceInfo) -> None:
        self.target.clear()
        self.target.addItem(NONE)
        self.target.addItems(info.columns)
        guess = next((c for c in info.columns if c.lower() in TARGET_NAMES), None)
        if guess is None and info.kind == "timeseries":
            # A series is usually forecast: its first value column is the target.
            guess = next((c for c in info.columns if c not in info.time_columns), None)
        self.target.setCurrentText(guess or NONE)
        self.time_column.clear()
        self.time_column.addItem(AUTO_TIME)
        self.time_column.addItems(info.columns)
        self.time_column.setCurrentText(info.time_columns[0] if info.time_columns else AUTO_TIME)

    def _default_name(self, stem: str) -> None:
        # Follow the file's name until the user types a name of their own.
        if not self.name.text() or self.name.text() == self._auto_name:
            self.name.setText(stem)
            self._auto_name = stem

    def _on_kind_changed(self) -> None:
        self._validate()

    # -- validation and result -------------------------------------------------------------

    def _validate(self) -> None:
        kind = self.kind.currentData()
        self.target.setEnabled(kind != "images")
        self.time_column.setEnabled(kind == "timeseries")
        problem = self._problem(kind)
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(not problem)
        self.status.setProperty("error", bool(problem) and problem != "hint")
        self.status.setText("" if problem == "hint" else problem or self._note())
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)

    def _problem(self, kind: str) -> str:
        if not self.source.text().strip():
            return "hint"
        if self._error:
            return self._error
        if self._info is None:
            return "Reading the source…"
        if (kind == "images") != (self._info.kind == "images"):
            return (
                "An image dataset is a folder with one sub-folder per class."
                if kind == "images"
                else "A folder can only be imported as images."
            )
        if not self.name.text().strip():
            return "Give the dataset a name."
        try:
            check_name(self.name.text().strip(), "The name")
        except LeptonError as exc:
            return str(exc)
        return ""

    def _note(self) -> str:
        name = self.name.text().strip()
        columns = len(self._info.columns) if self._info else 0
        where = f"adds a new version to “{name}”" if name in self._existing else "a new dataset"
        shape = f"{columns} columns, " if columns else ""
        return f"{shape}{where}."

    def job_args(self) -> dict[str, Any]:
        """The import job's arguments (DESIGN: source, name, kind, target, time_column)."""
        kind = self.kind.currentData()
        target = self.target.currentText() if kind != "images" else None
        time_column = self.time_column.currentText() if kind == "timeseries" else None
        return {
            "source": str(Path(self.source.text().strip()).resolve()),
            "name": self.name.text().strip(),
            "kind": kind,
            "target": None if target in (None, NONE, "") else target,
            "time_column": None if time_column in (None, AUTO_TIME, "") else time_column,
        }


def pii_warning(findings: Collection[Finding]) -> str:
    """The dialog's and the tab's warning about personal data, one column per line."""
    lines = [f"• {f.column}: {f.kind.replace('_', ' ')} ({f.share:.0%} of its cells)"
             for f in findings]  # fmt: skip
    return (
        "⚠ Personal data found:\n" + "\n".join(lines) + "\nThese columns are never model "
        "inputs; Prepare… can drop, hash (keyed, the key stays on this computer) or mask "
        "them before you share or export."
    )


def _message(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, LeptonError) else f"Cannot read the source: {exc}"
