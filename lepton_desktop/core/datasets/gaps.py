"""A time series' gaps filled in time, so its grid stays regular.

Dropping the rows whose target is missing (what a table's fill does: a label is never
invented) is wrong for a series: a weekly CO2 series with 59 missing weeks lost those
59 rows, and every window that spanned one then joined two weeks that were not
neighbours. Here, a series keeps one row per step of its time grid:

1. the grid's step is the median spacing of the time column; a spacing of k steps
   (k ≥ 2, within 10% of a whole number) is a gap of k - 1 missing rows, which are
   inserted with their time and every other cell missing;
2. the target and the numeric value columns are filled in time: ``linear`` (pandas'
   ``interpolate()``, neighbours equally spaced, which the regular grid makes true),
   ``time`` (weighted by the real time between neighbours: pandas' ``method="index"``)
   or ``ffill`` (the last value carried forward, which never reads a later value).
   Values before the first known one take that first value (``bfill``), so nothing is
   dropped; ``fill="drop"`` still drops rows, as asked.

Inserted rows belong to the split of the row before them (time order is kept).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from lepton_desktop.core.datasets.frame import Frame
from lepton_desktop.core.entities import DatasetVersion
from lepton_desktop.core.errors import InvalidOptionError
from lepton_desktop.core.preprocessing import tabular as steps

FILL_TIME_METHODS = ("linear", "time", "ffill")
#: A spacing this close to a whole number of steps is a gap of that many steps.
GRID_TOLERANCE = 0.1
#: Inserted rows at most, as a multiple of the series' rows (a wrong time column, say
#: one stray timestamp years away, must not make a series of billions of rows).
MAX_INSERTED_FACTOR = 10


def fill_in_time(frame: Frame, version: DatasetVersion, method: str
                 ) -> tuple[Frame, dict[str, Any]]:  # fmt: skip
    """``frame`` on a regular time grid, its target and numeric values filled in time.

    Returns the new frame and the operation recorded in the version's lineage.

    Raises:
        InvalidOptionError: an unknown ``method``, missing times, or a grid that would
            need more than :data:`MAX_INSERTED_FACTOR` times the rows; nothing written.
    """
    if method not in FILL_TIME_METHODS:
        raise InvalidOptionError(f"unknown fill-time {method!r}; use one of "
                                 f"{', '.join(FILL_TIME_METHODS)}")  # fmt: skip
    time_column = str(version.time_column)
    seconds = _time_values(frame, time_column)
    frame, inserted = _regular_grid(frame, version, seconds)
    filled: dict[str, int] = {}
    for name in _value_columns(frame, version):
        values = frame.columns[name]
        missing = int(steps.missing_mask(values).sum())
        if missing:
            frame.columns[name] = _interpolate(values, _time_values(frame, time_column), method)
            filled[name] = missing
    operation = {"op": "fill_time", "method": method, "inserted": inserted,
                 "filled": sum(filled.values()), "columns": filled,
                 "time_column": time_column}  # fmt: skip
    return frame, operation


def _time_values(frame: Frame, name: str) -> np.ndarray:
    """The time column as float seconds (dates) or numbers, in row order."""
    import pandas as pd

    values = frame.columns[name]
    if frame.dtypes.get(name) == "datetime":
        parsed = pd.to_datetime(pd.Series(values, dtype=object), errors="coerce", utc=True)
        seconds = parsed.astype("int64").to_numpy() / 1e9
        seconds[parsed.isna().to_numpy()] = np.nan
    else:
        seconds = np.asarray(values, dtype=float)
    if np.isnan(seconds).any():
        raise InvalidOptionError(
            f"time column {name!r} has {int(np.isnan(seconds).sum()):,} missing or unreadable "
            "times: a series cannot be filled in time around them (fill=drop removes them)"
        )
    return seconds


def _regular_grid(frame: Frame, version: DatasetVersion, seconds: np.ndarray
                  ) -> tuple[Frame, int]:  # fmt: skip
    """Insert a row for every missing step of the grid; return the frame and how many."""
    spacing = np.diff(seconds)
    positive = spacing[spacing > 0]
    if len(positive) == 0:
        return frame, 0
    step = float(np.median(positive))
    ratio = spacing / step
    whole = np.rint(ratio)
    gaps = (whole >= 2) & (np.abs(ratio - whole) <= GRID_TOLERANCE * whole)
    missing = np.where(gaps, whole - 1, 0).astype(np.int64)
    inserted = int(missing.sum())
    if inserted == 0:
        return frame, 0
    if inserted > MAX_INSERTED_FACTOR * len(frame):
        raise InvalidOptionError(
            f"{version.ref}: a regular grid every {step:g} time units would add {inserted:,} "
            f"rows to {len(frame):,}; check the time column {version.time_column!r}"
        )
    return _with_rows(frame, str(version.time_column), seconds, missing, step), inserted


def _with_rows(frame: Frame, time_column: str, seconds: np.ndarray, missing: np.ndarray,
               step: float) -> Frame:  # fmt: skip
    """``frame`` with ``missing[i]`` rows inserted after row ``i``, at steps of ``step``."""
    counts = missing + 1  # each row, then the rows inserted after it
    counts = np.append(counts[: len(frame) - 1], 1)[: len(frame)]
    source = np.repeat(np.arange(len(frame)), counts)  # the row each new row follows
    offset = np.arange(len(source)) - np.repeat(np.cumsum(counts) - counts, counts)
    new = offset > 0
    columns = {}
    for name, values in frame.columns.items():
        taken = values[source].copy()
        if name == time_column:
            taken[new] = _times_like(values, seconds[source[new]] + offset[new] * step,
                                     frame.dtypes.get(name))  # fmt: skip
        elif taken.dtype.kind in "iufb":
            taken = taken.astype(float)  # integers cannot hold a missing value
            taken[new] = np.nan
        else:
            taken[new] = None
        columns[name] = taken
    rows = frame.rows[source].copy()
    rows[new] = -1
    return dataclasses.replace(frame, columns=columns, split=frame.split[source], rows=rows)


def _times_like(values: np.ndarray, seconds: np.ndarray, dtype: str | None) -> np.ndarray:
    """New times written as the column writes its own (ISO dates or numbers)."""
    if dtype != "datetime":
        return seconds.astype(values.dtype) if values.dtype.kind == "i" else seconds
    import pandas as pd

    stamps = pd.to_datetime(seconds, unit="s", utc=True)
    sample = next((str(v) for v in values if v is not None), "")
    if len(sample) == 10:  # 2024-01-31: the column holds dates
        return np.asarray(stamps.strftime("%Y-%m-%d"), dtype=object)
    return np.asarray([s.isoformat() for s in stamps.tz_convert(None)], dtype=object)


def _value_columns(frame: Frame, version: DatasetVersion) -> list[str]:
    """The target and the numeric value columns (what a forecaster reads)."""
    names = [n for n, d in frame.dtypes.items() if d == "numeric" and n != version.time_column]
    target = version.target
    return ([target] if target in frame.columns else []) + [n for n in names if n != target]


def _interpolate(values: np.ndarray, seconds: np.ndarray, method: str) -> np.ndarray:
    import pandas as pd

    series = pd.Series(np.asarray(values, dtype=float), index=seconds)
    if method == "ffill":
        filled = series.ffill()
    else:
        filled = series.interpolate(method="linear" if method == "linear" else "index")
    return filled.bfill().to_numpy()
