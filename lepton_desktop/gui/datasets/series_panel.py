"""A line chart of a time series version: its numeric columns over its time column."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtWidgets import QVBoxLayout, QWidget

from lepton_desktop.core.entities import DatasetVersion
from lepton_desktop.core.project import Project
from lepton_desktop.gui.widgets.charts import LineChart

if TYPE_CHECKING:
    from lepton_desktop.gui.session import ProjectSession

MAX_POINTS = 5000


@dataclasses.dataclass(frozen=True)
class SeriesData:
    """What the chart draws: x (numbers or epoch seconds) and one y per column."""

    x: np.ndarray
    series: dict[str, np.ndarray]
    dates: bool


def value_columns(version: DatasetVersion) -> list[str]:
    """The numeric columns drawn as lines (every one but the time column)."""
    return [c.name for c in version.columns
            if c.dtype == "numeric" and c.name != version.time_column]


def load_series(project: Project, version: DatasetVersion) -> SeriesData:
    """DB thread: thinned rows, with the time column turned into numbers."""
    values = value_columns(version)
    time_col = version.time_column
    rows = project.series(version, ([time_col] if time_col else []) + values, MAX_POINTS)
    offset = 1 if time_col else 0
    series = {name: _floats([r[i + offset] for r in rows]) for i, name in enumerate(values)}
    if time_col is None:
        return SeriesData(np.arange(len(rows), dtype=float), series, dates=False)
    x, dates = to_x([r[0] for r in rows])
    return SeriesData(x, series, dates)


def to_x(values: list[Any]) -> tuple[np.ndarray, bool]:
    """Time values as numbers: ISO dates become epoch seconds (UTC); numbers stay."""
    if all(isinstance(v, int | float) or v is None for v in values):
        return _floats(values), False
    stamps = [None if v is None else _epoch(v) for v in values]
    if any(s is None and v is not None for s, v in zip(stamps, values, strict=True)):
        return np.arange(len(values), dtype=float), False  # not dates: use positions
    return _floats(stamps), True


def _epoch(value: Any) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def _floats(values: list[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


class SeriesPanel(QWidget):
    """The line chart of a time series version.

    Args:
        parent: the parent widget.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._version: DatasetVersion | None = None
        self.chart = LineChart(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.chart)
        self.data: SeriesData | None = None

    def set_version(self, session: ProjectSession | None, version: DatasetVersion | None) -> None:
        """Draw ``version``'s value columns over its time column."""
        self._version = version
        self.data = None
        self.chart.show_series(np.zeros(0), {}, dates=False)
        if session is None or version is None:
            return
        title = f"{', '.join(value_columns(version))} over {version.time_column or 'row'}"
        self.chart.set_title(title)
        session.query(lambda p: load_series(p, version), lambda d: self._on_data(version, d),
                      owner=self)

    def _on_data(self, version: DatasetVersion, data: SeriesData) -> None:
        if version is not self._version:
            return
        self.data = data
        self.chart.show_series(data.x, data.series, data.dates)
