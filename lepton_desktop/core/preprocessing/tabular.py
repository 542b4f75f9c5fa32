"""Preprocessing as JSON steps: fitted by prep, replayed on raw records by serving.

A prepared version keeps, in its ``pipeline``, the steps that turned its parent's rows
into its own, with every fitted parameter as plain JSON (never a pickle). A model's
full pipeline is the concatenation over the version's parent chain, oldest first
(:func:`lepton_desktop.core.datasets.prep.pipeline_chain`). The same ``apply`` code
runs inside prep and at serving time, so serving sees exactly the features that
training saw.

Data is handled column-wise (``Columns``: name -> 1-D numpy array); numeric columns
are ``float64`` with NaN for missing, the others ``object`` arrays of ``str`` with
``None`` for missing. The steps:

``{"step": "input", "columns": [{"name": n, "dtype": d}, ...]}``
    The feature columns a raw record must carry (not the target, not the time column)
    and how to read them: ``numeric`` values as numbers, anything else as text.
``{"step": "fill", "method": m, "values": {name: value}, "columns": [...]}``
    Missing cells take ``values[name]`` (mean, median, mode or zero, fitted on the
    train split). With ``method == "drop"`` there are no values: prep dropped rows
    with missing cells, so a record missing one of ``columns`` is refused.
``{"step": "scale", "method": "standard" | "minmax", "columns": {name: params}}``
    ``(x - mean) / std`` with params ``{"mean", "std"}``, or ``(x - min) / (max - min)``
    with ``{"min", "max"}``; a zero spread divides by 1 (a constant column stays put).
``{"step": "onehot", "columns": {name: [category, ...]}}``
    Each listed column becomes one 0/1 column per category, named ``name=category``,
    in its place; a missing or unknown category gives all zeros.
``{"step": "features", "names": [...]}``
    The model's inputs, in order (the last such step of a chain wins).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from lepton_desktop.core.errors import InvalidOptionError, LeptonError

Columns = dict[str, np.ndarray]
Step = dict[str, Any]


class RecordError(LeptonError):
    """A raw record cannot be turned into features (a missing or malformed value)."""


def onehot_name(column: str, category: str) -> str:
    """The name of the 0/1 column for ``category`` of ``column``."""
    return f"{column}={category}"


def missing_mask(values: np.ndarray) -> np.ndarray:
    """Boolean mask of the missing cells of one column.

    In a numeric column ``inf`` and ``-inf`` count as missing, as NaN does: they are
    no measurement, and a mean, fill or scale fitted over one is Infinity or NaN.
    """
    if values.dtype.kind == "f":
        return ~np.isfinite(values)
    return np.fromiter((v is None for v in values), dtype=bool, count=len(values))


# -- fitting (prep) -----------------------------------------------------------------


def fit_fill(columns: Columns, names: Sequence[str], method: str, fit_rows: np.ndarray) -> Step:
    """Fit fill values for ``names`` on the rows selected by ``fit_rows``.

    Numeric columns get the mean, median, mode or zero; other columns always get
    their most frequent value (the only fill that means something for text). A
    column with no value at all in the fitted rows gets 0 if numeric and stays
    missing otherwise.

    Args:
        columns: the data.
        names: the feature columns to fill (never the target).
        method: mean, median, mode, zero or drop.
        fit_rows: boolean mask of the rows to fit on (the train split).

    Returns:
        A ``fill`` step.
    """
    values: dict[str, Any] = {}
    if method != "drop":
        for name in names:
            value = _fill_value(columns[name][fit_rows], method)
            if value is not None:
                values[name] = value
    return {"step": "fill", "method": method, "values": values, "columns": list(names)}


def _fill_value(values: np.ndarray, method: str) -> Any:
    present = values[~missing_mask(values)]
    if values.dtype.kind != "f":
        return _most_frequent(present)
    if present.size == 0 or method == "zero":
        return 0.0
    if method == "mode":
        return float(_most_frequent(present))
    return mean_std(present)[0] if method == "mean" else float(np.median(present))


#: Below this magnitude a column's sum of squares cannot overflow float64.
_SAFE_MAGNITUDE = 1e150


def mean_std(present: np.ndarray) -> tuple[float, float]:
    """Mean and (population) spread of finite values, without overflowing.

    Values near float64's limit (1e300) would overflow the sum or the squares to
    Infinity, and scaling by an infinite spread turns a column into zeros or NaN;
    such a column is measured in units of its largest value instead.
    """
    largest = float(np.max(np.abs(present)))
    if largest < _SAFE_MAGNITUDE:
        return float(present.mean()), float(present.std())
    scaled = present / largest
    return float(scaled.mean() * largest), float(scaled.std() * largest)


def _most_frequent(present: np.ndarray) -> Any:
    if present.size == 0:
        return None
    # np.unique sorts, so ties go to the smallest value: deterministic across runs.
    uniques, counts = np.unique(present.astype(str if present.dtype.kind == "O" else float),
                                return_counts=True)
    best = uniques[int(np.argmax(counts))]
    return str(best) if present.dtype.kind == "O" else float(best)


def fit_scale(columns: Columns, names: Sequence[str], method: str, fit_rows: np.ndarray) -> Step:
    """Fit ``standard`` (mean/std) or ``minmax`` (min/max) scaling on ``fit_rows``.

    Args:
        columns: the data.
        names: the numeric feature columns to scale.
        method: ``standard`` or ``minmax``.
        fit_rows: boolean mask of the rows to fit on (the train split).

    Returns:
        A ``scale`` step. Columns with no value in the fitted rows scale by identity.
    """
    params: dict[str, dict[str, float]] = {}
    for name in names:
        values = columns[name][fit_rows]
        present = values[~missing_mask(values)]
        if method == "standard":
            mean, std = mean_std(present) if present.size else (0, 1)
            params[name] = {"mean": mean, "std": std}
        else:
            low, high = (float(present.min()), float(present.max())) if present.size else (0, 1)
            params[name] = {"min": low, "max": high}
    return {"step": "scale", "method": method, "columns": params}


def fit_onehot(columns: Columns, names: Sequence[str], fit_rows: np.ndarray) -> Step:
    """Collect the categories of ``names`` seen in ``fit_rows`` (sorted).

    Raises:
        InvalidOptionError: a new column's name would clash with an existing column.
    """
    categories = {
        name: sorted({v for v in columns[name][fit_rows] if v is not None}) for name in names
    }
    taken = set(columns)
    for name, cats in categories.items():
        clash = taken.intersection(onehot_name(name, c) for c in cats)
        if clash:
            raise InvalidOptionError(
                f"one-hot encoding {name!r} would overwrite the column {sorted(clash)[0]!r}; "
                "rename that column first"
            )
    return {"step": "onehot", "columns": categories}


# -- applying (prep and serving) ------------------------------------------------------


def apply_steps(steps: Sequence[Step], columns: Columns) -> Columns:
    """Apply ``steps`` in order to column data and return the new columns.

    Raises:
        RecordError: a value the steps cannot handle (e.g. missing where rows were
            dropped in training).
        LeptonError: an unknown step (a pipeline from a newer release).
    """
    for step in steps:
        kind = step.get("step")
        if kind not in _APPLY:
            raise LeptonError(f"unknown preprocessing step {kind!r}; update Lepton Desktop")
        columns = _APPLY[kind](step, columns)
    return columns


def _apply_input(step: Step, columns: Columns) -> Columns:
    # Inside a chain, later versions' input steps name columns made by earlier steps.
    for spec in step["columns"]:
        if spec["name"] not in columns:
            raise RecordError(f"missing feature {spec['name']!r}")
    return columns


def _apply_fill(step: Step, columns: Columns) -> Columns:
    out = dict(columns)
    if step["method"] == "drop":
        for name in step["columns"]:
            rows = np.flatnonzero(missing_mask(columns[name]))
            if rows.size:
                raise RecordError(
                    f"record {rows[0]}: feature {name!r} is missing, and this model was "
                    "trained on data whose rows with missing values were dropped"
                )
        return out
    for name, value in step["values"].items():
        values = columns[name].copy()
        values[missing_mask(values)] = value
        out[name] = values
    return out


def _apply_scale(step: Step, columns: Columns) -> Columns:
    out = dict(columns)
    for name, params in step["columns"].items():
        center, spread = center_spread(step["method"], params)
        out[name] = (columns[name] - center) / spread
    return out


def center_spread(method: str, params: Mapping[str, float]) -> tuple[float, float]:
    """``x -> (x - center) / spread`` of a fitted scale (a zero spread divides by 1)."""
    if method == "standard":
        center, spread = params["mean"], params["std"]
    else:
        center, spread = params["min"], params["max"] - params["min"]
    return center, spread if spread > 0 else 1.0


def _apply_onehot(step: Step, columns: Columns) -> Columns:
    out: Columns = {}
    for name, values in columns.items():
        categories = step["columns"].get(name)
        if categories is None:
            out[name] = values
            continue
        for category in categories:
            out[onehot_name(name, category)] = (values == category).astype(np.float64)
    return out


def _apply_features(step: Step, columns: Columns) -> Columns:
    return columns  # selection happens once, at the end of apply_pipeline


_APPLY: dict[str, Callable[[Step, Columns], Columns]] = {
    "input": _apply_input,
    "fill": _apply_fill,
    "scale": _apply_scale,
    "onehot": _apply_onehot,
    "features": _apply_features,
}


# -- undoing (explanations and drift show values in the units clients send) -----------


def undo_steps(chain: Sequence[Step], columns: Columns) -> Columns:
    """Columns of a prepared version back in the units of the imported data.

    Scaling and one-hot encoding are undone (a cell prep filled stays filled), so the
    values read like a client's raw record and :func:`apply_pipeline` makes the
    version's features of them again.
    """
    out = dict(columns)
    for step in reversed(chain):
        if step.get("step") == "scale":
            for name, params in step["columns"].items():
                if name in out:
                    center, spread = center_spread(step["method"], params)
                    out[name] = out[name].astype(np.float64) * spread + center
        elif step.get("step") == "onehot":
            for name, categories in step["columns"].items():
                out[name] = _undo_onehot(out, name, categories)
    return out


def _undo_onehot(columns: Columns, name: str, categories: list[str]) -> np.ndarray:
    flags = [columns.get(onehot_name(name, c)) for c in categories]
    rows = len(next(iter(columns.values()))) if columns else 0
    values = np.full(rows, None, dtype=object)
    for category, flag in zip(categories, flags, strict=True):
        if flag is not None:
            values[np.asarray(flag, dtype=np.float64) > 0.5] = category
    return values


def feature_sources(steps: Sequence[Step], names: Sequence[str]) -> list[str]:
    """The raw column each feature comes from (``color=red`` -> ``color``), in order."""
    origin = _origins(steps)
    return [origin.get(n, n) for n in names]


# -- raw records (serving) -------------------------------------------------------------


def apply_pipeline(
    steps: Sequence[Step], records: Sequence[Mapping[str, Any]]
) -> tuple[list[str], np.ndarray]:
    """Turn raw records (column name -> value, as in the source file) into features.

    Values may be numbers or the text of a CSV cell; ``None``, NaN and ``""`` are
    missing. Columns that are not features (the target, ids) are ignored.

    Args:
        steps: a full pipeline (see :func:`~lepton_desktop.core.datasets.prep.pipeline_chain`).
        records: the raw records.

    Returns:
        The feature names and a ``(len(records), len(names))`` array: ``float64`` when
        every feature is numeric, ``object`` otherwise (a text column not encoded).

    Raises:
        RecordError: a record lacks a feature, or a numeric feature is not a number;
            the message names the record (0-based) and the feature.
    """
    spec = _input_columns(steps) or [
        {"name": k, "dtype": _guess_dtype(records, k)} for k in (records or [{}])[0]
    ]
    columns, lacking = _read_records(records, spec)
    names = next((list(s["names"]) for s in reversed(steps) if s.get("step") == "features"),
                 None)
    # Only columns some feature derives from are required: a chain may read columns
    # (an earlier target, an id) that the final features no longer use.
    required = _sources(steps, names) if names is not None else list(columns)
    for name in required:
        if name in lacking:
            raise RecordError(f"record {lacking[name]}: missing feature {name!r}")
    columns = apply_steps(steps, columns)
    names = names if names is not None else list(columns)
    unknown = [n for n in names if n not in columns]
    if unknown:
        raise RecordError(f"missing feature {unknown[0]!r}")
    return names, _matrix([columns[n] for n in names], len(records))


def _input_columns(steps: Sequence[Step]) -> list[dict[str, str]]:
    # The raw columns: the union over the chain's input steps, less the columns that
    # earlier steps make (one-hot outputs); the first (rawest) dtype of a name wins.
    dtypes: dict[str, str] = {}
    made: set[str] = set()
    for step in steps:
        if step.get("step") == "onehot":
            made.update(onehot_name(c, v) for c, cats in step["columns"].items() for v in cats)
        if step.get("step") == "input":
            for spec in step["columns"]:
                if spec["name"] not in made:
                    dtypes.setdefault(spec["name"], spec["dtype"])
    return [{"name": n, "dtype": d} for n, d in dtypes.items()]


def _sources(steps: Sequence[Step], names: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(feature_sources(steps, names)))


def _origins(steps: Sequence[Step]) -> dict[str, str]:
    origin: dict[str, str] = {}
    for step in steps:
        if step.get("step") == "onehot":
            for column, categories in step["columns"].items():
                for category in categories:
                    origin[onehot_name(column, category)] = origin.get(column, column)
    return origin


def _matrix(arrays: list[np.ndarray], rows: int) -> np.ndarray:
    if not arrays:
        return np.empty((rows, 0), dtype=np.float64)
    numeric = all(a.dtype.kind == "f" for a in arrays)
    return np.column_stack(arrays).astype(np.float64 if numeric else object)


def _guess_dtype(records: Sequence[Mapping[str, Any]], name: str) -> str:
    values = [r.get(name) for r in records]
    numbers = all(isinstance(v, int | float) or v is None for v in values)
    return "numeric" if numbers else "text"


def _read_records(
    records: Sequence[Mapping[str, Any]], spec: Sequence[Mapping[str, str]]
) -> tuple[Columns, dict[str, int]]:
    # A column a record lacks reads as missing; ``lacking`` keeps the first such record.
    columns: Columns = {}
    lacking: dict[str, int] = {}
    for col in spec:
        name, numeric = col["name"], col["dtype"] == "numeric"
        read = _number if numeric else _text
        values = []
        for row, record in enumerate(records):
            if name not in record:
                lacking.setdefault(name, row)
            values.append(read(record.get(name), row, name))
        columns[name] = np.array(values, dtype=np.float64 if numeric else object)
    return columns, lacking


def _number(value: Any, row: int, name: str) -> float:
    # Missing: None, "" and a float NaN (how pandas and binary tensors say it). Text
    # that reads as a non-finite number ("inf", "NaN", "1e309") and infinite numbers
    # are refused: a model fed them answers NaN, which JSON shows as null.
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RecordError(f"record {row}: feature {name!r} must be a number, got {value!r}")
    text = value.strip() if isinstance(value, str) else None
    if text == "":
        return math.nan
    try:
        number = float(value)
    except ValueError:
        raise RecordError(
            f"record {row}: feature {name!r} must be a number, got {value!r}"
        ) from None
    except OverflowError:  # an int beyond any float
        number = math.inf
    if math.isinf(number) or (text is not None and math.isnan(number)):
        hint = " (send null for a missing value)" if text is not None else ""
        raise RecordError(
            f"record {row}: feature {name!r} must be a finite number, got {value!r}{hint}"
        )
    return number


def _text(value: Any, row: int, name: str) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"  # how the import stored boolean cells
    return str(value)


# -- compiled (serving's hot path) -----------------------------------------------------


class NumericPlan:
    """A pipeline over numeric columns compiled into whole-matrix operations.

    The same float64 operations as :func:`apply_pipeline`, in the same order (each
    ``scale`` step is ``(x - center) / spread`` on its columns, and ``(x - 0) / 1``,
    which changes no bit, on the others), applied to a matrix instead of column by
    column, so both paths give identical inputs. It answers only records whose features
    are all present as plain numbers; for anything else :meth:`encode` returns None and
    the caller takes :func:`apply_pipeline`, which fills, refuses or names the problem.
    """

    def __init__(self, names: list[str], scales: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.names = names
        self._scales = scales

    @classmethod
    def compile(cls, steps: Sequence[Step]) -> NumericPlan | None:
        """The plan of ``steps``, or None when they hold more than numeric scaling."""
        names = next((list(s["names"]) for s in reversed(steps) if s.get("step") == "features"),
                     None)
        if not names or not _numeric_only(steps, names):
            return None
        scales = []
        for step in steps:
            if step.get("step") == "scale":
                center, spread = _scale_vectors(step, names)
                scales.append((center, spread))
        return cls(names, scales)

    def encode(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray | None:
        """Records -> a float32 ``(N, features)`` input, or None (see the class)."""
        try:
            rows = [[record[name] for name in self.names] for record in records]
        except (KeyError, TypeError):
            return None
        if any(type(v) is not float and type(v) is not int for row in rows for v in row):
            return None
        matrix = np.array(rows, dtype=np.float64)
        if not np.isfinite(matrix).all():
            return None
        for center, spread in self._scales:
            matrix = (matrix - center) / spread
        if not np.isfinite(matrix).all():  # rare (an overflow); the check costs 1 us, this 15
            matrix = np.nan_to_num(matrix)  # as apply_pipeline's callers do
        return matrix.astype(np.float32)


def _numeric_only(steps: Sequence[Step], names: Sequence[str]) -> bool:
    numeric = {
        spec["name"]
        for step in steps
        if step.get("step") == "input"
        for spec in step["columns"]
        if spec["dtype"] == "numeric"
    }
    for step in steps:
        kind = step.get("step")
        if kind == "input" and any(spec["dtype"] != "numeric" for spec in step["columns"]):
            return False
        if kind not in ("input", "fill", "scale", "onehot", "features"):
            return False
        if kind == "onehot" and step["columns"]:
            return False
    return all(name in numeric for name in names)


def _scale_vectors(step: Step, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    center = np.zeros(len(names))
    spread = np.ones(len(names))
    for index, name in enumerate(names):
        params = step["columns"].get(name)
        if params is not None:
            center[index], spread[index] = center_spread(step["method"], params)
    return center, spread
