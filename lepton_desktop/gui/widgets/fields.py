"""Form field builders: spin boxes, number and size edits, drop-downs and check boxes
whose ranges and validators refuse bad values as typed."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from PySide6.QtCore import QLocale
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QLineEdit,
    QSpinBox,
    QWidget,
)

_SIZES = re.compile(r"^\s*(\d{1,5}\s*(,\s*)?)*$")
_INVALID_STYLE = "QLineEdit { border: 1px solid #d64545; border-radius: 2px; }"


class FloatValidator(QValidator):
    """A number in a range, in plain or scientific notation (``3e-4``), C locale.

    Partial input (``1e``, ``0.``) and values out of range are *intermediate*: the
    user can keep typing, but the field does not hold an acceptable value.

    Args:
        low: the smallest value.
        high: the largest value.
        open_low: refuse ``low`` itself (a learning rate must be above 0).
    """

    def __init__(self, low: float, high: float, *, open_low: bool = False) -> None:
        super().__init__()
        self.low, self.high, self.open_low = low, high, open_low

    def validate(self, text: str, pos: int) -> tuple[QValidator.State, str, int]:
        """Acceptable inside the range, intermediate while typing, invalid otherwise."""
        if not re.fullmatch(r"[0-9eE.+\-]*", text):
            return QValidator.State.Invalid, text, pos
        try:
            value = float(text)
        except ValueError:
            return QValidator.State.Intermediate, text, pos
        return self._range_state(value), text, pos

    def _range_state(self, value: float) -> QValidator.State:
        too_low = value <= self.low if self.open_low else value < self.low
        if not math.isfinite(value) or too_low or value > self.high:
            return QValidator.State.Intermediate
        return QValidator.State.Acceptable


class SizesValidator(QValidator):
    """Comma-separated positive whole numbers (``128, 64``)."""

    def validate(self, text: str, pos: int) -> tuple[QValidator.State, str, int]:
        """Acceptable for one or more sizes of at least 1."""
        if not _SIZES.match(text):
            return QValidator.State.Invalid, text, pos
        parts = [p.strip() for p in text.split(",")]
        if not parts or any(not p or int(p) < 1 for p in parts):
            return QValidator.State.Intermediate, text, pos
        return QValidator.State.Acceptable, text, pos


def _mark(edit: QLineEdit) -> None:
    edit.setStyleSheet("" if edit.hasAcceptableInput() else _INVALID_STYLE)


def float_edit(parent: QWidget, value: float, validator: QValidator, tip: str) -> QLineEdit:
    """A line edit for a number (a red frame while its text is not acceptable)."""
    edit = QLineEdit(f"{value:g}", parent)
    validator.setParent(edit)
    edit.setValidator(validator)
    edit.setToolTip(tip)
    edit.textChanged.connect(lambda _text: _mark(edit))
    return edit


def sizes_edit(parent: QWidget, sizes: Sequence[int], tip: str) -> QLineEdit:
    """A line edit for layer sizes such as ``128, 64``."""
    edit = QLineEdit(", ".join(str(s) for s in sizes), parent)
    validator = SizesValidator(edit)
    edit.setValidator(validator)
    edit.setToolTip(tip)
    edit.textChanged.connect(lambda _text: _mark(edit))
    return edit


def int_spin(
    parent: QWidget, low: int, high: int, value: int, tip: str, special: str = ""
) -> QSpinBox:
    """A whole-number spin box; ``special`` names its lowest value (``auto``, ``off``)."""
    spin = QSpinBox(parent)
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setToolTip(tip)
    spin.setSpecialValueText(special)
    spin.setAccelerated(True)
    return spin


def double_spin(
    parent: QWidget, low: float, high: float, value: float, step: float, tip: str,
    special: str = "",
) -> QDoubleSpinBox:
    """A decimal spin box (C locale, so ``0.1`` reads the same everywhere)."""
    spin = QDoubleSpinBox(parent)
    spin.setLocale(QLocale.c())
    spin.setDecimals(3)
    spin.setRange(low, high)
    spin.setSingleStep(step)
    spin.setValue(value)
    spin.setToolTip(tip)
    spin.setSpecialValueText(special)
    return spin


def combo(
    parent: QWidget, values: Sequence[str], current: str, tip: str,
    labels: Mapping[str, str] | None = None,
) -> QComboBox:
    """A drop-down of ``values`` (item data), shown with ``labels`` where given."""
    box = QComboBox(parent)
    for value in values:
        box.addItem((labels or {}).get(value, value), value)
    box.setCurrentIndex(list(values).index(current))
    box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    box.setMinimumContentsLength(8)
    box.setToolTip(tip)
    return box


def check_box(parent: QWidget, checked: bool, text: str, tip: str) -> QCheckBox:
    """A check box with a short text and a longer tooltip."""
    box = QCheckBox(text, parent)
    box.setChecked(checked)
    box.setToolTip(tip)
    return box
