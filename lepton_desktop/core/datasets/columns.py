"""Streaming per-column statistics and the dtype each column is given.

Statistics are merged batch by batch (Chan's parallel mean/variance), so a column is
described without ever holding it whole in memory.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lepton_desktop.core.entities import Column

#: Distinct values tracked per column before we stop counting ("10000+").
UNIQUE_CAP = 10_000
#: A string column with at most this many distinct values is categorical.
MAX_CATEGORIES = 1000


def storage_for(arrow_type: pa.DataType) -> tuple[str, str]:
    """Return ``(sqlite type, dtype)`` for an Arrow type from a reader's schema."""
    if pa.types.is_integer(arrow_type):
        return "INTEGER", "numeric"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "REAL", "numeric"
    if pa.types.is_boolean(arrow_type):
        return "TEXT", "categorical"
    if pa.types.is_temporal(arrow_type):
        return "TEXT", "datetime"
    return "TEXT", "text"  # strings; decided between text and categorical at the end


@dataclasses.dataclass
class ColumnStats:
    """Running statistics of one column."""

    name: str
    dtype: str
    count: int = 0
    missing: int = 0
    mean: float = 0.0
    m2: float = 0.0
    low: Any = None
    high: Any = None
    uniques: set[Any] | None = dataclasses.field(default_factory=set)
    #: Cells that held ``inf``, ``-inf`` or an overflow and were made missing.
    nonfinite: int = 0

    def add(self, arr: pa.Array) -> None:
        """Merge one batch of this column (before it is converted for SQLite)."""
        nulls = arr.null_count
        self.missing += nulls
        valid = len(arr) - nulls
        if valid == 0:
            return
        if self.dtype == "numeric":
            self._add_moments(arr, valid)
        if self.dtype in ("numeric", "datetime"):
            bounds = pc.min_max(arr).as_py()
            self.low = bounds["min"] if self.low is None else min(self.low, bounds["min"])
            self.high = bounds["max"] if self.high is None else max(self.high, bounds["max"])
        self.count += valid
        self._add_uniques(arr)

    def _add_moments(self, arr: pa.Array, valid: int) -> None:
        mean = pc.mean(arr).as_py()
        m2 = pc.variance(arr, ddof=0).as_py() * valid
        total = self.count + valid
        delta = mean - self.mean
        self.mean += delta * valid / total
        self.m2 += m2 + delta * delta * self.count * valid / total

    def _add_uniques(self, arr: pa.Array) -> None:
        if self.uniques is None:
            return
        self.uniques.update(pc.unique(arr.drop_null()).to_pylist())
        if len(self.uniques) > UNIQUE_CAP:
            self.uniques = None

    def _few_distinct_strings(self, unique: int | None) -> bool:
        # Strings repeating a few values are categories; mostly-distinct ones are text.
        if self.dtype != "text" or unique is None or not self.count:
            return False
        return unique <= MAX_CATEGORIES and unique <= max(2, self.count // 2)

    def to_column(self, position: int) -> Column:
        """The finished column with its dtype settled and JSON-ready statistics."""
        unique = len(self.uniques) if self.uniques is not None else None
        dtype = "categorical" if self._few_distinct_strings(unique) else self.dtype
        stats: dict[str, Any] = {"count": self.count, "missing": self.missing, "unique": unique}
        if self.nonfinite:
            stats["nonfinite"] = self.nonfinite  # (counted in ``missing`` too)
        if self.dtype == "numeric" and self.count:
            stats["mean"] = self.mean
            stats["std"] = math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 0.0
        if self.low is not None:
            stats["min"] = _jsonable(self.low)
            stats["max"] = _jsonable(self.high)
        return Column(position, self.name, dtype, stats)


def _jsonable(value: Any) -> Any:
    if isinstance(value, int | float | str) or value is None:
        return value
    return str(value)
