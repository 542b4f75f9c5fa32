"""File → Save a Copy for Sharing…: ``lepton-desktop share`` from the window.

The copy is written on the session's DB thread (``VACUUM INTO``, then the private parts
removed and the copy vacuumed; see core/privacy.py), never on the GUI thread; the
window says what was left out when it is done.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from lepton_desktop.gui.dialogs import show_exception
from lepton_desktop.gui.session import ProjectSession

FILTER = "Lepton projects (*.lepton);;All files (*)"
#: What the report calls each part left out.
LEFT_OUT = {
    "request_inputs": "captured request inputs",
    "request_outputs": "captured request outputs",
    "feedback": "feedback labels",
    "served_values_named_in_drift": "served values named by drift",
    "dataset_rows": "dataset rows",
}


def save_copy_for_sharing(parent: QWidget, session: ProjectSession) -> None:
    """Ask where, and whether to leave the dataset rows out too; then write the copy."""
    suggested = str(session.path.with_name(session.path.stem + "-shared.lepton"))
    path, _ = QFileDialog.getSaveFileName(
        parent, "Save a Copy for Sharing", suggested, FILTER,
        options=QFileDialog.Option.DontConfirmOverwrite,  # a copy never replaces a file
    )  # fmt: skip
    if not path:
        return
    box = QMessageBox(QMessageBox.Icon.Question, "Save a Copy for Sharing",
                      "The copy leaves out every captured request input and output and "
                      "all feedback. Leave out the rows of every dataset too (models, "
                      "runs and statistics stay)?", QMessageBox.StandardButton.NoButton,
                      parent)  # fmt: skip
    without = box.addButton("Leave Out Dataset Rows", QMessageBox.ButtonRole.AcceptRole)
    keep = box.addButton("Keep Dataset Rows", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setObjectName("shareQuestion")

    def chosen() -> None:
        if box.clickedButton() in (without, keep):
            write_copy(parent, session, Path(path), box.clickedButton() is without)

    box.finished.connect(chosen)
    box.open()


def write_copy(parent: QWidget, session: ProjectSession, out: Path, without_data: bool) -> None:
    """Write the copy on the DB thread; report what it left out (or why it failed)."""
    session.query(
        lambda p: p.share(out, without_data=without_data),
        lambda result: _report(parent, result),
        lambda exc: show_exception(parent, "Save a Copy for Sharing", exc),
    )


def report_text(result: dict[str, Any]) -> str:
    """``Wrote PATH (N bytes). Left out: ...`` for the message box."""
    parts = [f"{count:,} {LEFT_OUT.get(what, what)}" for what, count in result["left_out"].items()]
    return f"Wrote {result['path']} ({result['bytes']:,} bytes).\nLeft out: {', '.join(parts)}."


def _report(parent: QWidget, result: dict[str, Any]) -> None:
    box = QMessageBox(QMessageBox.Icon.Information, "Save a Copy for Sharing",
                      report_text(result), QMessageBox.StandardButton.Ok, parent)  # fmt: skip
    box.setObjectName("shareReport")
    box.open()
