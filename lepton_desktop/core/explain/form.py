"""A record typed by hand: one field per source column of a tabular model.

The Training tab's Explain page builds its form from :func:`record_fields` (what the
model's clients send, in the signature's order) and reads it back with
:func:`read_record`, which returns the record as ``/predict`` and ``explain --record``
take it, or says per field what is wrong with the text typed there. Numbers carry the
range and mean of the training rows as a hint (the rows the explainer's baseline is
taken over: a seeded sample of at most ``MEAN_ROWS`` of them); categories offer the
values training saw, the most frequent first, with the most frequent as the default.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

#: Values offered for one categorical column (the most frequent ones beyond).
MAX_CHOICES = 500
#: Significant digits of a prefilled mean (the exact mean means nothing to a reader).
DEFAULT_DIGITS = 4


@dataclasses.dataclass(frozen=True)
class RecordField:
    """One source column of the form.

    Attributes:
        name: the column, as a record names it.
        numeric: a number (else a category chosen among ``choices``).
        default: the training mean (rounded) or the most frequent category.
        low, high: numbers: the smallest and largest training value (None: none seen).
        choices: categories: the values training saw, the most frequent first.
    """

    name: str
    numeric: bool
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def hint(self) -> str:
        """What training saw, in words (the form shows it beside the field)."""
        if self.numeric:
            if self.low is None or self.high is None:
                return "no training value seen"
            return f"training range {_number(self.low)} to {_number(self.high)}"
        return f"{len(self.choices)} value{'s' if len(self.choices) != 1 else ''} seen in training"


def record_fields(
    inputs: Sequence[Mapping[str, Any]], train_records: Sequence[Mapping[str, Any]]
) -> list[RecordField]:
    """One field per raw input column (``predictor.raw_inputs`` of a tabular model),
    described from ``train_records`` (the training rows as raw records)."""
    fields = []
    for column in inputs:
        name = str(column["name"])
        seen = [r.get(name) for r in train_records if r.get(name) is not None]
        if column.get("dtype") == "numeric":
            fields.append(_numeric_field(name, seen))
        else:
            counts = Counter(str(v) for v in seen).most_common(MAX_CHOICES)
            choices = tuple(value for value, _ in counts)
            fields.append(RecordField(name, False, choices[0] if choices else "", choices=choices))
    return fields


def _numeric_field(name: str, seen: list[Any]) -> RecordField:
    numbers = [float(v) for v in seen if isinstance(v, int | float) and math.isfinite(v)]
    if not numbers:
        return RecordField(name, True, 0.0)
    mean = math.fsum(numbers) / len(numbers)
    return RecordField(name, True, float(f"{mean:.{DEFAULT_DIGITS}g}"), min(numbers), max(numbers))


def read_record(
    fields: Sequence[RecordField], texts: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The record typed in ``texts`` (column -> the text of its field).

    Returns:
        The record (numbers as floats, categories as text) and, per field whose text is
        not a value of its column, why not; the record is only usable when that is empty.
    """
    record: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in fields:
        text = str(texts.get(field.name, "")).strip()
        try:
            record[field.name] = _value(field, text)
        except ValueError as exc:
            errors[field.name] = str(exc)
    return record, errors


def _value(field: RecordField, text: str) -> Any:
    if not field.numeric:
        if field.choices and text not in field.choices:
            raise ValueError(f"{text!r} was never seen in training; choose one of the list")
        return text
    if not text:
        raise ValueError(f"enter a number ({field.hint})")
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number ({field.hint})") from None
    if not math.isfinite(number):
        raise ValueError(f"{text!r} is not a finite number ({field.hint})")
    return number


def shown(value: Any) -> str:
    """A record's value as its field shows it (missing: empty)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return _number(value)
    return str(value)


def _number(value: float) -> str:
    return f"{value:.10g}"
