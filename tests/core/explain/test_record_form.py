"""The typed-record form's fields and how its text is read back (Qt-free)."""

from __future__ import annotations

import pytest

from lepton_desktop.core.explain import form
from lepton_desktop.core.explain.form import read_record, record_fields

INPUTS = [{"name": "price", "dtype": "numeric"}, {"name": "colour", "dtype": "categorical"}]
TRAIN = [
    {"price": 3.0, "colour": "red"},
    {"price": None, "colour": "blue"},
    {"price": 9.5, "colour": "red"},
    {"price": 1.25, "colour": None},
]


def test_fields_describe_the_training_rows() -> None:
    price, colour = record_fields(INPUTS, TRAIN)
    assert (price.name, price.numeric, price.low, price.high) == ("price", True, 1.25, 9.5)
    assert price.default == pytest.approx((3.0 + 9.5 + 1.25) / 3, rel=1e-3)  # missing skipped
    assert price.hint == "training range 1.25 to 9.5"
    assert (colour.numeric, colour.choices, colour.default) == (False, ("red", "blue"), "red")
    assert colour.hint == "2 values seen in training"


def test_choices_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(form, "MAX_CHOICES", 3)
    rows = [{"c": str(i % 7)} for i in range(100)]
    (field,) = record_fields([{"name": "c", "dtype": "categorical"}], rows)
    assert field.choices == ("0", "1", "2")  # the most frequent (ties: first seen)


def test_a_good_record_is_read_back() -> None:
    fields = record_fields(INPUTS, TRAIN)
    record, errors = read_record(fields, {"price": " 4.5 ", "colour": "blue"})
    assert (record, errors) == ({"price": 4.5, "colour": "blue"}, {})


@pytest.mark.parametrize(
    ("price", "colour", "bad", "message"),
    [
        ("", "red", "price", "enter a number (training range 1.25 to 9.5)"),
        ("cheap", "red", "price", "'cheap' is not a number (training range 1.25 to 9.5)"),
        ("inf", "red", "price", "'inf' is not a finite number (training range 1.25 to 9.5)"),
        ("2", "green", "colour", "'green' was never seen in training; choose one of the list"),
    ],
)
def test_each_bad_field_is_named(price: str, colour: str, bad: str, message: str) -> None:
    record, errors = read_record(record_fields(INPUTS, TRAIN), {"price": price, "colour": colour})
    assert errors == {bad: message}
    assert bad not in record
