"""MLflow's scoring protocol (``POST /invocations``), so MLflow clients work unchanged.

Accepted bodies, as ``mlflow models serve`` accepts them:

* ``{"dataframe_split": {"columns": [...], "data": [[...], ...]}}``
* ``{"dataframe_records": [{column: value, ...}, ...]}``
* ``{"instances": ...}`` / ``{"inputs": ...}``: a list of records, a dict of columns
  (``{column: [values]}``), or a list of feature rows (already preprocessed features,
  ``[N, *input_shape]``, as a tensor model takes them);
* ``text/csv``: a header line and rows.

An optional ``"params": {"probabilities": true}`` asks classification models for
records ``{"label", "probabilities"}`` instead of plain labels.

Answers are ``{"predictions": [...]}`` shaped like a pyfunc model's output: a list of
labels for classification and a list of numbers for regression and forecasting.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from lepton_desktop.core.inference.predictor import InvalidInputError, Predictor, parse_json

_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


@dataclasses.dataclass
class Invocation:
    """A parsed scoring request: raw records, or a tensor of features."""

    records: list[dict[str, Any]] | None
    tensor: np.ndarray | None
    probabilities: bool

    def model_inputs(self, predictor: Predictor) -> np.ndarray:
        """The model's input array (encoding records with the stored preprocessing)."""
        if self.records is not None:
            return predictor.encode(self.records)
        assert self.tensor is not None
        return predictor.check_inputs(self.tensor)


def parse_invocation(body: bytes, content_type: str) -> Invocation:
    """Parse a request body.

    Raises:
        InvalidInputError: malformed JSON or CSV, or none of the accepted keys.
    """
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "text/csv":
        return Invocation(_csv_records(body), None, False)
    if media not in ("", "application/json"):
        raise InvalidInputError(
            f"content type {media!r} is not supported; use application/json or text/csv"
        )
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise InvalidInputError(f"the body must be a JSON object with one of {', '.join(_KEYS)}")
    given = [k for k in _KEYS if k in payload]
    if len(given) != 1:
        raise InvalidInputError(f"give exactly one of {', '.join(_KEYS)}")
    params = payload.get("params") or {}
    if not isinstance(params, dict):
        raise InvalidInputError('"params" must be an object')
    records, tensor = _read(given[0], payload[given[0]])
    return Invocation(records, tensor, bool(params.get("probabilities", False)))


def _read(key: str, value: Any) -> tuple[list[dict[str, Any]] | None, np.ndarray | None]:
    if key == "dataframe_split":
        return _split_records(value), None
    if key == "dataframe_records":
        if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
            raise InvalidInputError('"dataframe_records" must be a list of objects')
        return value, None
    return _instances(key, value)


def _split_records(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, dict):
        raise InvalidInputError('"dataframe_split" must be an object with columns and data')
    columns, data = value.get("columns"), value.get("data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise InvalidInputError('"dataframe_split.columns" must be a list of column names')
    if not isinstance(data, list) or not all(isinstance(r, list) for r in data):
        raise InvalidInputError('"dataframe_split.data" must be a list of rows')
    for i, row in enumerate(data):
        if len(row) != len(columns):
            raise InvalidInputError(
                f"dataframe_split row {i} has {len(row)} values for {len(columns)} columns"
            )
    return [dict(zip(columns, row, strict=True)) for row in data]


def _instances(key: str, value: Any) -> tuple[list[dict[str, Any]] | None, np.ndarray | None]:
    if isinstance(value, dict):  # columnar: {column: [values]}
        lists = {k: v if isinstance(v, list) else [v] for k, v in value.items()}
        sizes = {len(v) for v in lists.values()}
        if len(sizes) != 1:
            raise InvalidInputError(f'"{key}": the columns have different lengths')
        count = sizes.pop()
        return [{k: v[i] for k, v in lists.items()} for i in range(count)], None
    if not isinstance(value, list) or not value:
        raise InvalidInputError(f'"{key}" must be a non-empty list or an object of columns')
    if all(isinstance(r, dict) for r in value):
        return value, None
    try:
        tensor = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f'"{key}": give records (objects) or rows of feature numbers of equal length'
        ) from None
    return None, tensor


def _csv_records(body: bytes) -> list[dict[str, Any]]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInputError("the CSV body is not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text))
    try:
        records = [dict(r) for r in reader]
    except csv.Error as exc:
        raise InvalidInputError(f"malformed CSV: {exc}") from None
    if not reader.fieldnames or not records:
        raise InvalidInputError("the CSV body needs a header line and at least one row")
    if any(None in r for r in records):
        raise InvalidInputError("a CSV row has more values than the header has columns")
    return records


def predictions(answers: Sequence[Mapping[str, Any]], probabilities: bool) -> list[Any]:
    """Decoded answers -> pyfunc-shaped predictions."""
    if answers and "label" in answers[0]:
        return list(answers) if probabilities else [a["label"] for a in answers]
    return [a["value"] for a in answers]


def error_body(message: str, code: str = "BAD_REQUEST") -> bytes:
    """MLflow's error shape."""
    return orjson.dumps({"error_code": code, "message": message})
