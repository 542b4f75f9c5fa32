"""Form fields and text formats the features share: validators refuse bad values as
typed, and durations read the same in every table."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from lepton_desktop.gui.widgets.fields import (
    FloatValidator,
    SizesValidator,
    check_box,
    float_edit,
    int_spin,
    sizes_edit,
)
from lepton_desktop.gui.widgets.formatting import format_duration

pytestmark = pytest.mark.gui
State = QValidator.State


@pytest.mark.parametrize(
    ("text", "state"),
    [("3e-4", State.Acceptable), ("1", State.Acceptable), ("0", State.Intermediate),
     ("1e", State.Intermediate), ("2", State.Intermediate), ("inf", State.Invalid),
     ("abc", State.Invalid)],
)  # fmt: skip
def test_float_validator_takes_scientific_notation_inside_an_open_range(
    text: str, state: QValidator.State
) -> None:
    assert FloatValidator(0.0, 1.0, open_low=True).validate(text, 0)[0] == state


def test_edits_frame_a_refused_value_until_it_is_fixed(qtbot: QtBot) -> None:
    parent = QWidget()
    qtbot.addWidget(parent)
    lr = float_edit(parent, 1e-3, FloatValidator(0.0, 1.0, open_low=True), "Learning rate")
    assert lr.text() == "0.001" and lr.hasAcceptableInput() and lr.styleSheet() == ""
    lr.setText("0")
    assert not lr.hasAcceptableInput() and "border" in lr.styleSheet()
    lr.setText("0.01")
    assert lr.styleSheet() == ""

    sizes = sizes_edit(parent, (128, 64), "Hidden sizes")
    assert sizes.text() == "128, 64" and sizes.hasAcceptableInput()
    assert SizesValidator().validate("128, 0", 0)[0] == State.Intermediate
    assert SizesValidator().validate("128; 64", 0)[0] == State.Invalid


def test_spin_boxes_and_check_boxes_carry_their_range_and_tip(qtbot: QtBot) -> None:
    parent = QWidget()
    qtbot.addWidget(parent)
    spin = int_spin(parent, 0, 100, 0, "Epochs", special="auto")
    assert spin.text() == "auto" and (spin.minimum(), spin.maximum()) == (0, 100)
    spin.setValue(500)
    assert spin.value() == 100
    box = check_box(parent, True, "by rarity", "Weight each class by its rarity")
    assert box.isChecked() and box.toolTip().startswith("Weight")


def test_durations_read_in_seconds_minutes_or_hours() -> None:
    assert format_duration(None) == ""
    assert format_duration(42.4) == "42 s"
    assert format_duration(185) == "3 min 05 s"
    assert format_duration(3720) == "1 h 02 min"
