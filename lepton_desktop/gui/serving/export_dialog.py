"""The "Export served model…" dialog: a model version, a format and where to write it.

The export itself runs in an ``export`` worker (the tab starts it); the dialog only
gathers the three answers and refuses an empty path.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
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
    QWidget,
)

#: format key -> (label, file suffix; "" for a folder)
FORMATS = {
    "onnx": ("ONNX (.onnx)", ".onnx"),
    "torchscript": ("TorchScript (.pt)", ".pt"),
    "bundle": ("Bundle for lepton-desktop serve (.zip)", ".zip"),
    "triton": ("Triton / KServe model repository (folder)", ""),
}


def default_path(folder: Path, ref: str, fmt: str) -> Path:
    """``folder/NAME-vN.suffix``; for Triton the repository folder (the model goes
    into ``model_repository/NAME``)."""
    name, _, version = ref.partition(":")
    stem = f"{name}-v{version}" if version else name
    suffix = FORMATS[fmt][1]
    return folder / (stem + suffix if suffix else "model_repository")


class ExportDialog(QDialog):
    """Pick a model version, a format and a path.

    Args:
        refs: the model versions offered (``name:version``), the served one first.
        folder: where the path starts.
        parent: the parent widget.

    Signals:
        exportRequested(str, str, str): ref, format key, path.
    """

    exportRequested = Signal(str, str, str)

    def __init__(self, refs: list[str], folder: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export Served Model")
        self.folder = folder
        self.model = QComboBox(self)
        self.model.addItems(refs)
        self.format = QComboBox(self)
        for key, (label, _suffix) in FORMATS.items():
            self.format.addItem(label, key)
        self.path = QLineEdit(self)
        self.path.setMinimumWidth(360)
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path, 1)
        path_row.addWidget(browse)
        self.error = QLabel(self)
        self.error.setObjectName("formError")
        self.error.setProperty("error", True)
        self.error.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, parent=self)
        accept = QDialogButtonBox.ButtonRole.AcceptRole
        self.export_button = self.buttons.addButton("Export", accept)
        self.buttons.accepted.connect(self._on_accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Model", self.model)
        form.addRow("Format", self.format)
        form.addRow("Save to", path_row)
        form.addRow(self.error)
        form.addRow(self.buttons)
        self.model.currentTextChanged.connect(lambda _t: self._suggest())
        self.format.currentIndexChanged.connect(lambda _i: self._suggest())
        self._suggest()

    @property
    def format_key(self) -> str:
        """The chosen format (``onnx``, ``torchscript``, ``bundle``, ``triton``)."""
        return str(self.format.currentData())

    def _suggest(self) -> None:
        ref = self.model.currentText()
        if ref:
            current = Path(self.path.text()).parent if self.path.text() else self.folder
            self.path.setText(str(default_path(current, ref, self.format_key)))

    def _browse(self) -> None:
        if self.format_key == "triton":
            chosen = QFileDialog.getExistingDirectory(
                self, "Model repository folder", self.path.text()
            )
        else:
            suffix = FORMATS[self.format_key][1]
            chosen, _ = QFileDialog.getSaveFileName(
                self, "Export to", self.path.text(), f"*{suffix};;All files (*)"
            )
        if chosen:
            self.path.setText(chosen)

    def _on_accept(self) -> None:
        path = self.path.text().strip()
        if not self.model.currentText():
            self._refuse("There is no model to export.")
        elif not path:
            self._refuse("Choose where to write the export.")
        else:
            self.exportRequested.emit(self.model.currentText(), self.format_key, path)
            self.accept()

    def _refuse(self, text: str) -> None:
        self.error.setText(text)
        self.error.show()
