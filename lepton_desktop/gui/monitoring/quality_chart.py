"""Live quality over time: the realised metric per bin, its estimate, the offline line.

The realised value (accuracy, or MAE for a regressor) comes from feedback labels, one
point per bin that has enough of them (no point is claimed on a few labels); the
estimate (CBPE: the model's own calibrated confidence, before any label arrives) is
drawn beside it when the model gives probabilities; the version's offline test metric
is a dashed horizontal line, the value the live ones are read against.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from lepton_desktop.gui.widgets.charts import LineChart

_NAMES = {"accuracy": "Accuracy", "mae": "MAE"}


class QualityChart(LineChart):
    """The quality of one model over the window's bins."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, "Live quality", dates=True)
        pen = pg.mkPen("#6c757d", width=1.4, style=Qt.PenStyle.DashLine)
        label = {"position": 0.92, "anchors": [(1, 1), (1, 1)]}  # right, clear of the legend
        self.reference = pg.InfiniteLine(angle=0, pen=pen, movable=False, label="",
                                         labelOpts=label)  # fmt: skip
        self.reference.setVisible(False)
        self.getPlotItem().addItem(self.reference, ignoreBounds=False)
        self.reference_value: float | None = None
        self.setMinimumHeight(220)

    def show_quality(self, series: dict[str, Any] | None, reference: dict[str, Any] | None,
                     estimated: dict[str, Any] | None = None) -> None:  # fmt: skip
        """Draw a report's ``quality_series`` (``None``: several models, nothing to draw),
        the version's offline ``reference`` and the ``estimated`` series."""
        if series is None:
            self.show_series(np.array([]), {}, dates=True)
            self._show_reference(None, "")
            return
        metric = series["metric"]
        name = _NAMES.get(metric, metric)
        x = np.asarray(series["start"], dtype=float) + series["bin_seconds"] / 2
        lines = {f"{name} (labels)": _values(series["values"])}
        if estimated is not None and len(estimated.get("values", [])) == len(x):
            lines[f"{name} (estimated)"] = _values(estimated["values"])
        self.set_title(f"Live {name.lower()} (bins with ≥ {series.get('min', 20)} labels)")
        value = (reference or {}).get("metrics", {}).get(metric)
        label = f"offline test {value:.3f} (v{reference['version']})" if reference and \
            value is not None else ""  # fmt: skip
        self._show_reference(value, label)  # first: the y range holds it
        self.show_series(x, lines, dates=True)

    def extra_y(self) -> list[float]:
        """The offline reference line, kept in view."""
        return [] if self.reference_value is None else [self.reference_value]

    def _show_reference(self, value: float | None, label: str) -> None:
        self.reference_value = value
        self.reference.setVisible(value is not None)
        if value is not None:
            self.reference.setValue(value)
            self.reference.label.setFormat(label)


def _values(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)
