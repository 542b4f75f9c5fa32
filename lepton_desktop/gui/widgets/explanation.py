"""One explanation drawn: the answer, the method and baseline named, and the attributions.

Shared by the Training tab's Explain page and the Serving tab's "Explain" of a logged
request: a bar per source column for tables (its raw value in the label), the heat map
beside the picture for CNNs, and a bar per time step on the window for RNNs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from lepton_desktop.gui.widgets.charts import ThemedPlot

if TYPE_CHECKING:
    from lepton_desktop.core.explain import Explanation

POSITIVE, NEGATIVE = "#d64545", "#2f6fb0"
#: Columns drawn for a table, the largest |attribution| first.
MAX_BARS = 20


class ExplanationView(QWidget):
    """A title (answer, method, baseline) above a chart of the attributions.

    Args:
        parent: the parent widget.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.explanation: Explanation | None = None
        self.title = QLabel(self)
        self.title.setObjectName("explainTitle")
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.chart = ThemedPlot(self, "Attributions")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.chart, 1)

    def show_message(self, text: str) -> None:
        """A line instead of an explanation (loading, an error); the chart is cleared."""
        self.explanation = None
        self.title.setText(text)
        self.chart.getPlotItem().clear()

    def show_explanation(self, explanation: Explanation) -> None:
        """Draw ``explanation`` with its method and baseline named."""
        self.explanation = explanation
        said = explanation.prediction.get("label", explanation.prediction.get("value"))
        self.title.setText(
            f"<b>{explanation.model}</b> answered <b>{_shown(said)}</b><br>"
            f"{explanation.method_name} of the {explanation.target}<br>"
            f"Baseline: {explanation.baseline}"
        )
        plot = self.chart.getPlotItem()
        plot.clear()
        for name in ("left", "bottom"):  # attributions of 0.03 read as 0.03, not 30 m
            plot.getAxis(name).enableAutoSIPrefix(False)
        plot.getAxis("left").setWidth(None)
        plot.getViewBox().invertY(False)
        plot.getViewBox().setAspectLocked(False)
        if explanation.kind == "images":
            self._draw_image(explanation)
        elif explanation.kind == "timeseries":
            self._draw_series(explanation)
        else:
            self._draw_table(explanation)

    def _draw_table(self, explanation: Explanation) -> None:
        features = explanation.features[:MAX_BARS][::-1]
        values = np.array([f["attribution"] for f in features])
        bars = pg.BarGraphItem(x0=np.zeros(len(values)), y=np.arange(len(values)),
                               width=values, height=0.7,
                               brushes=[pg.mkBrush(POSITIVE if v >= 0 else NEGATIVE)
                                        for v in values])  # fmt: skip
        plot = self.chart.getPlotItem()
        plot.addItem(bars)
        labels = [(i, f"{f['column']} = {_short(f['value'])}") for i, f in enumerate(features)]
        plot.getAxis("left").setTicks([labels])
        _fit_left_axis(self.chart, [label for _, label in labels])
        plot.getAxis("bottom").setTicks(None)
        plot.setLabel("bottom", "attribution (red: towards the answer)")
        plot.autoRange()

    def _draw_image(self, explanation: Explanation) -> None:
        from lepton_desktop.core.explain.render import heat_overlay

        assert explanation.picture is not None and explanation.heatmap is not None
        overlay = heat_overlay(explanation.picture, explanation.heatmap)
        height, width = overlay.shape[:2]
        side = np.concatenate([explanation.picture, np.zeros((height, 1, 3), np.uint8),
                               overlay], axis=1)  # fmt: skip
        image = pg.ImageItem(side.transpose(1, 0, 2))
        plot = self.chart.getPlotItem()
        plot.addItem(image)
        plot.getViewBox().invertY(True)
        plot.getViewBox().setAspectLocked(True)
        plot.getAxis("left").setTicks([[]])
        plot.getAxis("bottom").setTicks([[(width / 2, "input"), (width * 1.5 + 1, "heat map")]])
        plot.setLabel("bottom", "")
        plot.autoRange()

    def _draw_series(self, explanation: Explanation) -> None:
        steps = np.arange(len(explanation.values)) - len(explanation.values) + 1
        values = np.asarray(explanation.values)
        attributions = np.asarray(explanation.steps)
        plot = self.chart.getPlotItem()
        plot.getAxis("left").setTicks(None)
        plot.getAxis("bottom").setTicks(None)
        plot.addItem(pg.PlotDataItem(steps, values, pen=pg.mkPen("#888888", width=2),
                                     symbol="o", symbolSize=6))  # fmt: skip
        spread = float(np.abs(attributions).max()) or 1.0
        scale = (float(np.ptp(values)) or 1.0) / spread * 0.5
        bars = pg.BarGraphItem(x=steps, y0=values, height=attributions * scale, width=0.5,
                               brushes=[pg.mkBrush(POSITIVE if a >= 0 else NEGATIVE)
                                        for a in attributions])  # fmt: skip
        plot.addItem(bars)
        plot.setLabel("bottom", "time step (0: the last value); bars: attribution")
        plot.autoRange()


def _fit_left_axis(plot: ThemedPlot, labels: list[str]) -> None:
    # pyqtgraph drops tick labels that do not fit the axis: make room for the longest.
    metrics = QFontMetrics(plot.font())
    widest = max((metrics.horizontalAdvance(label) for label in labels), default=20)
    plot.getPlotItem().getAxis("left").setWidth(widest + 28)


def _short(value: Any) -> str:
    if isinstance(value, list):
        return f"[{len(value)} values]"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _shown(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
