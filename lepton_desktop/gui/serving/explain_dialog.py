"""The "Explain" of a logged request: why the model answered it, from its captured inputs.

The button under the request's detail is enabled for an answered request (status
200) of a model version whose inputs the server captured. The dialog explains the
request's first record with the version that answered it, on the session's DB thread
(Captum: never the GUI thread), and draws it with the shared
:class:`~lepton_desktop.gui.widgets.explanation.ExplanationView`. For a table's model
the request's record also fills a form (the Explain page's
:class:`~lepton_desktop.gui.widgets.record_form.RecordForm`), where one value can be
changed and the record explained again, as ``explain --record`` does: what would the
model have answered, and why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QSplitter, QVBoxLayout, QWidget

from lepton_desktop.core.explain.data import NoTrainingDataError
from lepton_desktop.core.explain.form import RecordField, record_fields
from lepton_desktop.gui.widgets.explanation import ExplanationView
from lepton_desktop.gui.widgets.record_form import RecordForm

if TYPE_CHECKING:
    from lepton_desktop.core.entities import RequestRecord
    from lepton_desktop.core.explain import Explanation
    from lepton_desktop.core.project import Project
    from lepton_desktop.gui.session import ProjectSession


def explain_logged(
    project: Project, model: str, request_id: str
) -> tuple[Explanation, list[RecordField]]:
    """DB thread: the logged request explained, and the form's fields (a table's model
    whose training rows are at hand; else none)."""
    explanation = project.explain(model, request_id=request_id)
    if explanation.kind != "tabular":
        return explanation, []
    try:
        rows, _, explainer = project.explain_rows(model)
    except NoTrainingDataError:
        return explanation, []
    return explanation, record_fields(explainer.predictor.raw_inputs, rows.train_records)


def explainable(record: RequestRecord | None) -> str | None:
    """Why ``record`` cannot be explained (None: it can)."""
    if record is None:
        return "Click a request first."
    if record.status != 200 or not record.model or record.version is None:
        return "Only an answered prediction can be explained."
    if record.inputs is None:
        return "The server did not capture this request's inputs (capture was off)."
    return None


class ExplainDialog(QDialog):
    """The explanation of one logged request.

    Args:
        session: the open project.
        record: the logged request (with its captured inputs).
        parent: the parent widget.
    """

    def __init__(
        self, session: ProjectSession, record: RequestRecord, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.record = record
        self.session = session
        self.model = model = f"{record.model}:{record.version}"
        self.setWindowTitle(f"Why {model} answered request {record.request_id}")
        self.view = ExplanationView(self)
        self.form = RecordForm(self)
        self.form.hide()
        self.form.explainRequested.connect(self.explain_record)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(self.form)
        split.addWidget(self.view)
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(split, 1)
        layout.addWidget(buttons)
        self.resize(720, 480)
        self.view.show_message(f"Explaining request {record.request_id} with {model}…")
        request_id = record.request_id
        session.query(lambda p: explain_logged(p, model, request_id),
                      self._on_explained, self._on_failed, owner=self)  # fmt: skip

    def _on_explained(self, result: tuple[Explanation, list[RecordField]]) -> None:
        explanation, fields = result
        self.view.show_explanation(explanation)
        if fields:
            self.form.set_fields(fields, "The request's record: change a value and explain "
                                 "it again.")  # fmt: skip
            self.form.fill(_first_record(self.record.inputs))
            self.form.show()
            self.resize(max(self.width(), 1000), self.height())

    def explain_record(self, record: dict[str, Any]) -> None:
        """Explain the record typed in the form with the version that answered (DB thread)."""
        model = self.model
        self.view.show_message("Explaining the changed record…")
        self.session.query(lambda p: p.explain(model, record=record),
                           self.view.show_explanation, self._on_failed, owner=self)  # fmt: skip

    def _on_failed(self, exc: BaseException) -> None:
        self.view.show_message(f"Cannot explain it: {exc}")


def _first_record(inputs: Any) -> dict[str, Any]:
    # What the dialog explained: the first of the captured records (see core.explain).
    records = inputs.get("records") if isinstance(inputs, dict) else inputs
    first = records[0] if isinstance(records, list) and records else {}
    return first if isinstance(first, dict) else {}
