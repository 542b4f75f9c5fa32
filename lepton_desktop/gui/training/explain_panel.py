"""Why the model answered one test row: the Training tab's "Explain" page.

The page lists the selected run's test rows (true answer, the model's answer, the raw
values), narrowed to one confusion-matrix cell when one is clicked. Choosing a row
explains it on the session's DB thread (Captum: torch never runs on the GUI thread)
and draws the attributions: a bar per source column for tables, the heat map over the
picture for CNNs, a bar per time step under the window for RNNs, with the method and
the baseline named above the chart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop.gui.training.eval_charts import fit_left_axis
from lepton_desktop.gui.widgets.charts import ThemedPlot

if TYPE_CHECKING:
    from lepton_desktop.core.explain import Explanation
    from lepton_desktop.core.project import Project
    from lepton_desktop.gui.session import ProjectSession

POSITIVE, NEGATIVE = "#d64545", "#2f6fb0"
#: Test rows listed (the first ones); the explanation of any row is one click away.
MAX_LISTED = 2000
METHODS = {"Integrated Gradients": "ig", "Occlusion": "occlusion", "Grad-CAM": "gradcam"}


def read_rows(project: Project, model: str) -> tuple[list[Any], list[Any], list[str]]:
    """DB thread: the true answers, the model's answers and a short text of each row."""
    rows, answers = project.explain_rows(model)
    return rows.truth, answers, [_summary(r) for r in rows.records]


def _summary(record: dict[str, Any]) -> str:
    if "image" in record:
        return "image"
    parts = [f"{k}={_short(v)}" for k, v in record.items()]
    return ", ".join(parts)[:120]


def _short(value: Any) -> str:
    if isinstance(value, list):
        return f"[{len(value)} values]"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class ExplainPanel(QWidget):
    """Test rows and the explanation of the chosen one (see the module docstring)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session: ProjectSession | None = None
        self.model: str | None = None
        self.explanation: Explanation | None = None
        self._loaded_for: str | None = None
        self._cell: tuple[str, str] | None = None
        self.rows = QTableWidget(0, 4, self)
        self.rows.setHorizontalHeaderLabels(["Row", "True", "Model", "Values"])
        self.rows.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.rows.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.rows.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.rows.verticalHeader().hide()
        header = self.rows.horizontalHeader()
        for column in range(3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.method = QComboBox(self)
        self.method.addItems(list(METHODS))
        self.filter_label = QLabel(self)
        self.show_all = QPushButton("Show all rows", self)
        self.title = QLabel("Choose a test row to see why the model answered it.", self)
        self.title.setObjectName("explainTitle")
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.chart = ThemedPlot(self, "Attributions")
        self._build()
        self.rows.itemSelectionChanged.connect(self._on_row_chosen)
        self.method.currentIndexChanged.connect(self._on_row_chosen)
        self.show_all.clicked.connect(lambda: self.show_cell(None))

    def _build(self) -> None:
        left = QWidget(self)
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        bar.addWidget(self.filter_label, 1)
        bar.addWidget(self.show_all)
        column.addLayout(bar)
        column.addWidget(self.rows, 1)
        right = QWidget(self)
        side = QVBoxLayout(right)
        side.setContentsMargins(0, 0, 0, 0)
        methods = QHBoxLayout()
        methods.addWidget(QLabel("Method:", self))
        methods.addWidget(self.method, 1)
        side.addLayout(methods)
        side.addWidget(self.title)
        side.addWidget(self.chart, 1)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([420, 520])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)
        self._update_filter()

    # -- what is shown -------------------------------------------------------------

    def set_model(self, session: ProjectSession | None, model: str | None) -> None:
        """Explain ``model``'s test rows (read when the page is shown)."""
        self.session, self.model = session, model
        if model != self._loaded_for:
            self.rows.setRowCount(0)
            self._loaded_for = None
            self.explanation = None
            self.chart.getPlotItem().clear()
            self.title.setText("Choose a test row to see why the model answered it."
                               if model else "Select a run with a registered model.")  # fmt: skip
        if self.isVisible():
            self.load()

    def load(self) -> None:
        """Read the test rows of the model (DB thread), unless they are shown already."""
        session, model = self.session, self.model
        if session is None or model is None or model == self._loaded_for:
            return
        self._loaded_for = model
        self.title.setText(f"Reading the test rows of {model}…")
        session.query(lambda p: read_rows(p, model), self._on_rows, owner=self)

    def showEvent(self, event: Any) -> None:
        """Rows are read the first time the page is seen for a model."""
        super().showEvent(event)
        self.load()

    def show_cell(self, cell: tuple[str, str] | None) -> None:
        """Only the rows of true class ``cell[0]`` the model called ``cell[1]``."""
        self._cell = cell
        for row in range(self.rows.rowCount()):
            true, said = self.rows.item(row, 1).text(), self.rows.item(row, 2).text()
            self.rows.setRowHidden(row, cell is not None and (true, said) != cell)
        self._update_filter()

    def _update_filter(self) -> None:
        cell = self._cell
        self.filter_label.setText(
            f"True {cell[0]!r}, predicted {cell[1]!r}" if cell else "Every test row"
        )
        self.show_all.setVisible(cell is not None)

    def _on_rows(self, result: tuple[list[Any], list[Any], list[str]]) -> None:
        truth, answers, summaries = result
        count = min(len(truth), MAX_LISTED)
        self.rows.setRowCount(count)
        for row in range(count):
            cells = [str(row), _shown(truth[row]), _shown(answers[row]), summaries[row]]
            for column, text in enumerate(cells):
                self.rows.setItem(row, column, QTableWidgetItem(text))
        self.title.setText(f"{len(truth):,} test rows. Choose one to see why the model "
                           "answered it.")  # fmt: skip
        self.show_cell(self._cell)

    # -- explaining ----------------------------------------------------------------

    def _on_row_chosen(self) -> None:
        selected = self.rows.selectionModel().selectedRows()
        if not selected or self.session is None or self.model is None:
            return
        row, model = int(self.rows.item(selected[0].row(), 0).text()), self.model
        method = METHODS[self.method.currentText()]
        self.title.setText(f"Explaining row {row}…")
        self.session.query(lambda p: p.explain(model, row=row, method=method),
                           self.show_explanation, self._on_failed, owner=self)  # fmt: skip

    def _on_failed(self, exc: BaseException) -> None:
        self.title.setText(f"Cannot explain it: {exc}")

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
        features = explanation.features[:20][::-1]
        values = np.array([f["attribution"] for f in features])
        bars = pg.BarGraphItem(x0=np.zeros(len(values)), y=np.arange(len(values)),
                               width=values, height=0.7,
                               brushes=[pg.mkBrush(POSITIVE if v >= 0 else NEGATIVE)
                                        for v in values])  # fmt: skip
        plot = self.chart.getPlotItem()
        plot.addItem(bars)
        labels = [(i, f"{f['column']} = {_short(f['value'])}") for i, f in enumerate(features)]
        plot.getAxis("left").setTicks([labels])
        fit_left_axis(self.chart, [label for _, label in labels])
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


def _shown(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
