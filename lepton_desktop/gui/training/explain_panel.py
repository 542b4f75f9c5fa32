"""Why the model answered one test row: the Training tab's "Explain" page.

The page lists the selected run's test rows (true answer, the model's answer, the raw
values), narrowed to one confusion-matrix cell when one is clicked; for a table, a
second page holds a form with one field per source column
(:mod:`~lepton_desktop.gui.widgets.record_form`), where a record is typed, or a chosen
test row changed, and explained as ``explain --record`` explains it. Choosing a row or
pressing "Explain" explains it on the session's DB thread (Captum: torch never runs on
the GUI thread) and draws the attributions: a bar per source column for tables, the
heat map over the picture for CNNs, a bar per time step under the window for RNNs,
with the method and the baseline named above the chart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop.core.explain.form import RecordField, record_fields
from lepton_desktop.gui.widgets.explanation import ExplanationView
from lepton_desktop.gui.widgets.record_form import RecordForm

if TYPE_CHECKING:
    from lepton_desktop.core.explain import Explanation
    from lepton_desktop.core.project import Project
    from lepton_desktop.gui.session import ProjectSession

#: Test rows listed (the first ones); the explanation of any row is one click away.
MAX_LISTED = 2000
METHODS = {"Integrated Gradients": "ig", "Occlusion": "occlusion", "Grad-CAM": "gradcam"}


@dataclasses.dataclass(frozen=True)
class TestRows:
    """A model's test rows as the page lists them, and what explains them.

    Attributes:
        truth, answers, summaries: per row its true answer, the model's, its values.
        records: per row its raw record (what the form is filled with).
        fields: tables: the form's fields (one per source column); else none.
        explain: ``(row, method) -> Explanation``, run on the DB thread only (the
            model stays loaded between clicks).
        explain_record: ``(record, method) -> Explanation`` of a typed record (DB
            thread only), as ``explain --record`` explains it.
    """

    truth: list[Any]
    answers: list[Any]
    summaries: list[str]
    records: list[dict[str, Any]]
    fields: list[RecordField]
    explain: Callable[[int, str], Explanation]
    explain_record: Callable[[dict[str, Any], str], Explanation]


def read_rows(project: Project, model: str) -> TestRows:
    """DB thread: the test rows, the model's answers, and the loaded explainer."""
    rows, answers, explainer = project.explain_rows(model)
    fields = []
    if rows.kind == "tabular":
        fields = record_fields(explainer.predictor.raw_inputs, rows.train_records)
    return TestRows(
        rows.truth, answers, [_summary(r) for r in rows.records], rows.records, fields,
        lambda row, method: explainer.explain(rows.record(row), method),
        explainer.explain,
    )  # fmt: skip


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
        self._loaded_for: str | None = None
        self._test: TestRows | None = None
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
        self.view = ExplanationView(self)
        self.form = RecordForm(self)
        self.inputs = QTabWidget(self)
        self.inputs.setDocumentMode(True)
        self.view.show_message("Choose a test row to see why the model answered it.")
        self._build()
        self.rows.itemSelectionChanged.connect(self._on_row_chosen)
        self.method.currentIndexChanged.connect(self._on_method_changed)
        self.show_all.clicked.connect(lambda: self.show_cell(None))
        self.form.explainRequested.connect(self.explain_record)

    def _build(self) -> None:
        left = QWidget(self)
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        bar.addWidget(self.filter_label, 1)
        bar.addWidget(self.show_all)
        column.addLayout(bar)
        column.addWidget(self.rows, 1)
        self.inputs.addTab(left, "Test rows")
        self.inputs.addTab(self.form, "Type a record")
        right = QWidget(self)
        side = QVBoxLayout(right)
        side.setContentsMargins(0, 0, 0, 0)
        methods = QHBoxLayout()
        methods.addWidget(QLabel("Method:", self))
        methods.addWidget(self.method, 1)
        side.addLayout(methods)
        side.addWidget(self.view, 1)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(self.inputs)
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
            self._test = None
            hint = "Choose a test row to see why the model answered it."
            self.view.show_message(hint if model else "Select a run with a registered model.")
            self._show_form([], "Reading the model's columns…" if model else "")
        if self.isVisible():
            self.load()

    def load(self) -> None:
        """Read the test rows of the model (DB thread), unless they are shown already."""
        session, model = self.session, self.model
        if session is None or model is None or model == self._loaded_for:
            return
        self._loaded_for = model
        self.view.show_message(f"Reading the test rows of {model}…")
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

    def _on_rows(self, result: TestRows) -> None:
        self._test = result
        truth, answers, summaries = result.truth, result.answers, result.summaries
        count = min(len(truth), MAX_LISTED)
        self.rows.setRowCount(count)
        for row in range(count):
            cells = [str(row), _shown(truth[row]), _shown(answers[row]), summaries[row]]
            for column, text in enumerate(cells):
                self.rows.setItem(row, column, QTableWidgetItem(text))
        self.view.show_message(
            f"{len(truth):,} test rows. Choose one to see why the model answered it."
        )
        self.show_cell(self._cell)
        self._show_form(result.fields, "" if result.fields else
                        "Only a table's model takes a typed record here; explain an image "
                        "or a window with `lepton-desktop explain --image/--record`.")  # fmt: skip

    def _show_form(self, fields: list[RecordField], note: str) -> None:
        self.form.set_fields(fields, note)
        self.inputs.setTabEnabled(1, bool(fields))

    # -- explaining ----------------------------------------------------------------

    def _on_method_changed(self) -> None:
        # Explain again what is shown: the typed record on the form's page, else the row.
        if self.inputs.currentWidget() is self.form:
            self.form.request()
        else:
            self._on_row_chosen()

    def _on_row_chosen(self) -> None:
        selected = self.rows.selectionModel().selectedRows()
        test = self._test
        if not selected or self.session is None or test is None:
            return
        row = int(self.rows.item(selected[0].row(), 0).text())
        method = METHODS[self.method.currentText()]
        if test.fields:
            self.form.fill(test.records[row])  # to change a value and explain it again
        self.view.show_message(f"Explaining row {row}…")
        self.session.query(lambda _p: test.explain(row, method),
                           self.view.show_explanation, self._on_failed, owner=self)  # fmt: skip

    def explain_record(self, record: dict[str, Any]) -> None:
        """Explain a typed record (DB thread) with the chosen method."""
        test = self._test
        if self.session is None or test is None:
            return
        method = METHODS[self.method.currentText()]
        self.view.show_message("Explaining the typed record…")
        self.session.query(lambda _p: test.explain_record(record, method),
                           self.view.show_explanation, self._on_failed, owner=self)  # fmt: skip

    def _on_failed(self, exc: BaseException) -> None:
        self.view.show_message(f"Cannot explain it: {exc}")

    @property
    def explanation(self) -> Explanation | None:
        """The explanation shown, if any."""
        return self.view.explanation


def _shown(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
