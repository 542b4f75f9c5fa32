"""A record typed by hand, one field per source column of a model (the Explain page and
the Serving tab's explanation of a logged request).

Numbers are line edits showing the training range; categories are combo boxes of the
values training saw. The fields start at the training means and most frequent values,
and a chosen test row is copied in (to change one value and see what moves). "Explain"
reads the fields through :func:`lepton_desktop.core.explain.form.read_record`: a value
that is not one of its column's is named under its field and nothing runs; otherwise
:attr:`RecordForm.explainRequested` carries the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop.core.explain.form import RecordField, read_record, shown

_ERROR_STYLE = "color: #d64545;"
_HINT_STYLE = "color: palette(placeholder-text); font-size: small;"


class RecordForm(QWidget):
    """The fields of a model's record and its "Explain" button (see the module docstring).

    Args:
        parent: the parent widget.
    """

    explainRequested = Signal(dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fields: list[RecordField] = []
        self.editors: dict[str, QLineEdit | QComboBox] = {}
        self.errors: dict[str, QLabel] = {}
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        self.explain_button = QPushButton("Explain", self)
        self.explain_button.setObjectName("explainRecord")
        self.explain_button.setToolTip("Why the model answers this record")
        self.reset_button = QPushButton("Training means", self)
        self.reset_button.setToolTip("Every number at its training mean, every category "
                                     "at its most frequent value")  # fmt: skip
        self._body = QWidget(self)
        self._rows = QFormLayout(self._body)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._body)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.note)
        layout.addWidget(scroll, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.reset_button)
        buttons.addStretch(1)
        buttons.addWidget(self.explain_button)
        layout.addLayout(buttons)
        self.explain_button.clicked.connect(self.request)
        self.reset_button.clicked.connect(self.reset)
        self.set_fields([], "Select a run with a registered model.")

    def set_fields(self, fields: list[RecordField], note: str = "") -> None:
        """One row per field, at its default; ``note`` above them (why there are none)."""
        while self._rows.rowCount():
            self._rows.removeRow(0)
        self.fields, self.editors, self.errors = list(fields), {}, {}
        for field in fields:
            editor = self._editor(field)
            error = QLabel(self._body)
            error.setObjectName(f"error:{field.name}")
            error.setStyleSheet(_ERROR_STYLE)
            error.setWordWrap(True)
            error.hide()
            hint = QLabel(field.hint, self._body)
            hint.setStyleSheet(_HINT_STYLE)
            column = QWidget(self._body)
            stack = QVBoxLayout(column)
            stack.setContentsMargins(0, 0, 0, 0)
            stack.setSpacing(1)
            stack.addWidget(editor)
            stack.addWidget(hint)
            stack.addWidget(error)
            self._rows.addRow(field.name, column)
            self.editors[field.name], self.errors[field.name] = editor, error
        self.note.setText(note or "Type a record (as /predict takes it) and explain it.")
        self.explain_button.setEnabled(bool(fields))
        self.reset_button.setEnabled(bool(fields))

    def _editor(self, field: RecordField) -> QLineEdit | QComboBox:
        if field.numeric:
            line = QLineEdit(shown(field.default), self._body)
            line.setPlaceholderText(field.hint)
            line.setToolTip(f"{field.name}: a number; {field.hint}")
            line.textEdited.connect(lambda _text, name=field.name: self._clear_error(name))
            return line
        combo = QComboBox(self._body)
        combo.addItems(list(field.choices))
        combo.setCurrentText(str(field.default))
        combo.currentIndexChanged.connect(lambda _i, name=field.name: self._clear_error(name))
        combo.setToolTip(f"{field.name}: {field.hint}")
        return combo

    def reset(self) -> None:
        """Every field back at its default (the training mean or most frequent value)."""
        self.fill({f.name: f.default for f in self.fields})

    def fill(self, record: Mapping[str, Any]) -> None:
        """Copy ``record``'s values into the fields it has."""
        for name, editor in self.editors.items():
            if name not in record:
                continue
            if isinstance(editor, QLineEdit):
                editor.setText(shown(record[name]))
            else:
                editor.setCurrentText(shown(record[name]))
            self._clear_error(name)

    def texts(self) -> dict[str, str]:
        """The text of every field."""
        return {
            name: editor.text() if isinstance(editor, QLineEdit) else editor.currentText()
            for name, editor in self.editors.items()
        }

    def request(self) -> None:
        """Emit the typed record, or name what is wrong under each bad field."""
        record, errors = read_record(self.fields, self.texts())
        for name, label in self.errors.items():
            label.setText(errors.get(name, ""))
            label.setVisible(name in errors)
        if not errors:
            self.explainRequested.emit(record)

    def _clear_error(self, name: str) -> None:
        self.errors[name].hide()

    def error(self, name: str) -> str | None:
        """The message shown under field ``name`` (None when there is none)."""
        label = self.errors[name]
        return label.text() if not label.isHidden() else None
