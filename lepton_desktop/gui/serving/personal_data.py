"""Whether the request log keeps a model's personal data: the per-model switch.

A server redacts the columns found to hold personal data in a model's training data
from what it captures (the value becomes ``<redacted email>``) unless the model's
owner opted in (``Project.capture_pii``). This box shows, for the model chosen, which
columns those are and the stored setting, and asks for a change; the tab confirms a
switch on (it keeps personal data in clear in the project file) and stores it. The
box never shows a state that is not stored: a click is turned back at once and the
stored setting, read again after the write, sets the box.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QWidget,
)

from lepton_desktop.core.entities import Deployment
from lepton_desktop.gui.serving.ops import PersonalData

CAPTURE_TEXT = "Capture personal data in the request log"


def kind_name(kind: str) -> str:
    """``date_of_birth`` -> ``date of birth``."""
    return kind.replace("_", " ")


def columns_text(columns: dict[str, str]) -> str:
    """``email (email), dob (date of birth)``."""
    return ", ".join(f"{column} ({kind_name(kind)})" for column, kind in columns.items())


def confirmation_text(data: PersonalData) -> str:
    """What switching capture on means, for the question asked before it is stored."""
    return (
        f"Keep the personal data that clients send to {data.model} in the request log, "
        f"in clear: {columns_text(data.columns)}.\n\n"
        "Until now the server replaced those values with a marker before logging them. "
        "From now on they are stored in the project file, where anyone who can read the "
        "file (or a copy of it) can read them, and Explain and Replay can use them. "
        "A running server follows this within a second. Forget requests clears what "
        "was captured; a copy saved for sharing leaves it out."
    )


def state_text(data: PersonalData, server: Deployment | None) -> str:
    """What the log does with the chosen model's personal data, now."""
    if not data.columns:
        return f"No personal data was found in {data.model}'s training data: nothing to redact."
    columns = columns_text(data.columns)
    if data.capture:
        text = f"Kept in clear in the log: {columns}."
    else:
        text = f"Redacted before it is logged (shown as “<redacted …>”): {columns}."
    options = server.options if server is not None and server.active else {}
    if options.get("capture_pii"):
        text += (" The running server was started with --capture-pii: it keeps every "
                 "model's personal data until it is restarted.")  # fmt: skip
    elif options and not options.get("capture_inputs", True):
        text += " The running server captures no inputs at all."
    return text


class PersonalDataBox(QGroupBox):
    """The model chosen, its personal-data columns, and the capture switch.

    Signals:
        captureRequested(str, bool): the user asked to switch this model's capture.
    """

    captureRequested = Signal(str, bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Personal data in the request log", parent)
        self.model_box = QComboBox(self)
        self.model_box.setToolTip("The model whose request log this applies to")
        self.capture = QCheckBox(CAPTURE_TEXT, self)
        self.capture.setToolTip(
            "Off (the default): the server replaces the values of columns found to hold "
            "personal data with a marker before it logs a request"
        )
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        self.note.setObjectName("personalDataNote")
        form = QFormLayout(self)
        form.addRow("Model", self.model_box)
        form.addRow(self.capture)
        form.addRow(self.note)
        self.models: dict[str, PersonalData] = {}
        self.server: Deployment | None = None
        self.model_box.currentIndexChanged.connect(lambda _i: self._show())
        self.capture.clicked.connect(self._on_clicked)
        self._show()

    def set_models(self, models: Sequence[PersonalData]) -> None:
        """The stored settings of every model (the choice kept when still there)."""
        chosen = self.model_box.currentText()
        self.models = {m.model: m for m in models}
        self.model_box.blockSignals(True)
        self.model_box.clear()
        self.model_box.addItems(list(self.models))
        self.model_box.setCurrentIndex(max(self.model_box.findText(chosen), 0))
        self.model_box.blockSignals(False)
        self._show()

    def set_server(self, deployment: Deployment | None) -> None:
        """The server's deployment (its start-up options change what the note says)."""
        if deployment != self.server:
            self.server = deployment
            self._show()

    def choose(self, model: str) -> None:
        """Show ``model``'s setting."""
        self.model_box.setCurrentIndex(self.model_box.findText(model))

    def current(self) -> PersonalData | None:
        """The chosen model's stored setting."""
        return self.models.get(self.model_box.currentText())

    def _show(self) -> None:
        data = self.current()
        self.capture.blockSignals(True)
        self.capture.setChecked(data is not None and data.capture)
        self.capture.blockSignals(False)
        # Switching on means nothing for a model without personal data; switching off
        # stays possible whatever was found.
        self.capture.setEnabled(data is not None and (bool(data.columns) or data.capture))
        self.note.setText("" if data is None else state_text(data, self.server))
        self.note.setVisible(data is not None)

    def _on_clicked(self, checked: bool) -> None:
        data = self.current()
        self._show()  # back to the stored state until the change is stored
        if data is not None and checked != data.capture:
            self.captureRequested.emit(data.model, checked)
