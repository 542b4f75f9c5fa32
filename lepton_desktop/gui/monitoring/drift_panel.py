"""The Monitoring tab's drift panel: a coloured table of features and one histogram.

The table lists each input feature (and the model's prediction) with the test
Evidently would pick, its statistic, p-value, PSI, the shares of missing and unseen
values and the verdict, drifted rows in red. Choosing a row draws that feature's
training and served shares side by side. Everything shown comes from the report the
tab read on the DB thread: nothing here reads the project.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop.gui.widgets.charts import SERIES_COLORS, ThemedPlot, category_ticks

COLUMNS = ("Feature", "Test", "Statistic", "p-value", "PSI", "Missing", "Unseen", "Verdict")
DRIFTED = QColor("#d62828")
STABLE = QColor("#2a9d8f")
_TEST_NAMES = {
    "ks": "K-S", "chisquare": "chi-square", "z": "Z-test",
    "wasserstein": "Wasserstein (normed)", "jensenshannon": "Jensen-Shannon",
}  # fmt: skip


class FeatureHistogram(ThemedPlot):
    """Training and served shares of one feature, as pairs of bars."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, "Choose a feature")
        self.training = pg.BarGraphItem(x=[], height=[], width=0.4, brush=SERIES_COLORS[0],
                                        name="training")  # fmt: skip
        self.served = pg.BarGraphItem(x=[], height=[], width=0.4, brush=SERIES_COLORS[1],
                                      name="served")  # fmt: skip
        item = self.getPlotItem()
        item.addLegend(offset=(10, 10))  # lists the named bars added after it
        for bars in (self.training, self.served):
            item.addItem(bars)
        item.setMouseEnabled(x=False, y=False)
        self.labels: list[str] = []

    def show_feature(self, feature: dict[str, Any] | None) -> None:
        """Draw ``feature``'s histogram (None: clear)."""
        histogram = (feature or {}).get("histogram") or {"labels": [], "reference": [],
                                                          "current": []}  # fmt: skip
        self.labels = list(histogram["labels"])
        x = np.arange(len(self.labels), dtype=float)
        self.training.setOpts(x=x - 0.2, height=[100 * v for v in histogram["reference"]])
        self.served.setOpts(x=x + 0.2, height=[100 * v for v in histogram["current"]])
        self.getPlotItem().getAxis("bottom").setTicks([category_ticks(self.labels)])
        self.set_title(f"{feature['feature']}: % of rows, training vs served" if feature
                       else "Choose a feature")  # fmt: skip
        self.getPlotItem().enableAutoRange()


class DriftPanel(QWidget):
    """The drift table, the dataset verdict above it and the histogram below."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.verdict = QLabel("Choose one model to see the drift of its inputs.", self)
        self.verdict.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.histogram = FeatureHistogram(self)
        self.features: list[dict[str, Any]] = []
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.table)
        split.addWidget(self.histogram)
        split.setSizes([300, 300])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.verdict)
        layout.addWidget(split, 1)
        self.table.itemSelectionChanged.connect(self._on_selected)

    def show_drift(self, drift: dict[str, Any] | None) -> None:
        """Show one model's drift (None: several models are shown, or none)."""
        chosen = self.selected_feature()
        self.features = list((drift or {}).get("features", []))
        self.verdict.setText(_verdict_text(drift))
        self.table.setRowCount(len(self.features))
        for row, feature in enumerate(self.features):
            for column, item in enumerate(_cells(feature)):
                self.table.setItem(row, column, item)
        names = [f["feature"] for f in self.features]
        keep = names.index(chosen) if chosen in names else (0 if names else -1)
        if keep >= 0:
            self.table.selectRow(keep)
        self._on_selected()

    def selected_feature(self) -> str | None:
        """The feature whose histogram is drawn."""
        rows = self.table.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self.features):
            return None
        return str(self.features[rows[0].row()]["feature"])

    def _on_selected(self) -> None:
        name = self.selected_feature()
        self.histogram.show_feature(next((f for f in self.features if f["feature"] == name),
                                         None))  # fmt: skip


def _verdict_text(drift: dict[str, Any] | None) -> str:
    if not drift:
        return "Choose one model to see the drift of its inputs."
    if not drift["features"]:
        return f"No drift to show: {drift['note']}."
    tested = [f for f in drift["features"] if f["role"] == "feature" and f["test"]]
    reference = drift["reference"]
    verdict = "dataset drift" if drift["dataset_drift"] else "no dataset drift"
    text = (f"<b>{drift['drifted_features']} of {len(tested)} features drifted "
            f"({drift['share']:.0%}): {verdict}</b> · {drift['rows']:,} served rows against "
            f"{reference.get('dataset', '?')} {reference.get('split', '')} "
            f"({reference.get('rows', 0):,} rows)")  # fmt: skip
    return text + (f" · {drift['note']}" if drift["note"] else "")


def _cells(feature: dict[str, Any]) -> list[QTableWidgetItem]:
    test = feature["test"]
    name = "prediction (the model's answers)" if feature["role"] == "prediction" else \
        feature["feature"]  # fmt: skip
    values = [
        name,
        _TEST_NAMES.get(test, "–") if test else "no values served",
        _number(feature["statistic"]),
        _number(feature["p_value"]),
        _number(feature["psi"]),
        f"{feature['missing_share']:.1%}",
        f"{feature['unseen_share']:.1%}" if feature["dtype"] == "categorical" else "",
        ("drifted" if feature["drifted"] else "stable") if test else "–",
    ]
    items = [QTableWidgetItem(text) for text in values]
    for item in items[2:7]:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    if test:
        colour = DRIFTED if feature["drifted"] else STABLE
        items[-1].setForeground(QBrush(colour))
        items[0].setForeground(QBrush(colour) if feature["drifted"] else items[0].foreground())
        tint = QColor(colour)
        tint.setAlpha(40)
        items[-1].setBackground(QBrush(tint))
    return items


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"
