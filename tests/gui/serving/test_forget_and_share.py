"""Forgetting a request from the Serving tab's log, and File → Save a Copy for Sharing,
on a real project file with a request log (no server)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from lepton_desktop.core.project import Project
from lepton_desktop.gui.serving.tab import ServingTab
from lepton_desktop.gui.session import ProjectSession
from lepton_desktop.gui.sharing import report_text, write_copy

pytestmark = pytest.mark.gui
TIMEOUT_MS = 10_000


@pytest.fixture
def tab(qtbot: QtBot, logged_tab: ServingTab) -> ServingTab:
    qtbot.waitUntil(lambda: len(logged_tab.log.log.records) == 3, timeout=TIMEOUT_MS)
    return logged_tab


def _answer(qtbot: QtBot, button_text: str) -> None:
    def box() -> QMessageBox:
        found = [w for w in QApplication.topLevelWidgets()
                 if isinstance(w, QMessageBox) and w.isVisible()]  # fmt: skip
        assert found
        return found[-1]

    qtbot.waitUntil(lambda: bool(box()), timeout=TIMEOUT_MS)
    for button in box().buttons():
        if button.text() == button_text:
            button.click()
            return
    raise AssertionError(f"no button {button_text!r}")


def test_forget_the_selected_request(qtbot: QtBot, tab: ServingTab, logged: Path) -> None:
    assert not tab.forget_button.isEnabled()
    tab.log.selectRow(0)  # diab-a
    qtbot.waitUntil(lambda: "age" in tab.detail.toPlainText(), timeout=TIMEOUT_MS)
    assert tab.forget_button.isEnabled() and tab.detail.request_id == "diab-a"
    tab.forget_button.click()
    _answer(qtbot, "Forget")
    qtbot.waitUntil(lambda: "forgotten" in tab.banner.label.text(), timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: "age" not in tab.detail.toPlainText(), timeout=TIMEOUT_MS)
    with Project.open(logged) as project:
        record = project.serving.find_request("diab-a")
        kept = project.serving.find_request("diab-b")
    assert record is not None and record.inputs is None and record.outputs is None
    assert kept is not None and kept.inputs == [{"age": 72, "bmi": 30.5}]


def test_save_a_copy_for_sharing(
    qtbot: QtBot, logged: Path, tmp_path: Path, open_session: Callable[[Path], ProjectSession]
) -> None:
    session = open_session(logged)
    parent = QWidget()
    qtbot.addWidget(parent)
    out = tmp_path / "shared.lepton"
    write_copy(parent, session, out, without_data=True)
    qtbot.waitUntil(lambda: any(isinstance(w, QMessageBox) and w.isVisible()
                                for w in QApplication.topLevelWidgets()),
                    timeout=TIMEOUT_MS)  # fmt: skip
    shown = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox)
             and w.objectName() == "shareReport"]  # fmt: skip
    assert shown and "7 captured request inputs" in shown[0].text()
    assert b"sepal_length" not in out.read_bytes()
    assert "Left out: 7 captured request inputs" in report_text(
        {"path": "x", "bytes": 1, "left_out": {"request_inputs": 7}}
    )
