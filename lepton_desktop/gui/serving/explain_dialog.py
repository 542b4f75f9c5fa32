"""The "Explain" of a logged request: why the model answered it, from its captured inputs.

The button under the request's detail is enabled for an answered request (status
200) of a model version whose inputs the server captured. The dialog explains the
request's first record with the version that answered it, on the session's DB thread
(Captum: never the GUI thread), and draws it with the shared
:class:`~lepton_desktop.gui.widgets.explanation.ExplanationView`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QVBoxLayout, QWidget

from lepton_desktop.gui.widgets.explanation import ExplanationView

if TYPE_CHECKING:
    from lepton_desktop.core.entities import RequestRecord
    from lepton_desktop.gui.session import ProjectSession


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
        model = f"{record.model}:{record.version}"
        self.setWindowTitle(f"Why {model} answered request {record.request_id}")
        self.view = ExplanationView(self)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view, 1)
        layout.addWidget(buttons)
        self.resize(720, 480)
        self.view.show_message(f"Explaining request {record.request_id} with {model}…")
        request_id = record.request_id
        session.query(lambda p: p.explain(model, request_id=request_id),
                      self.view.show_explanation, self._on_failed, owner=self)  # fmt: skip

    def _on_failed(self, exc: BaseException) -> None:
        self.view.show_message(f"Cannot explain it: {exc}")
