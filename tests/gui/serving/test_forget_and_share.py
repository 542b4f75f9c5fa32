"""Forgetting a request or a time range from the Serving tab's log, and File → Save a
Copy for Sharing, on a real project file with a request log (no server)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from lepton_desktop.core.project import Project
from lepton_desktop.core.store import serving as serving_store
from lepton_desktop.gui.serving.forget_dialog import ForgetRequestsDialog
from lepton_desktop.gui.serving.tab import ServingTab
from lepton_desktop.gui.session import ProjectSession
from lepton_desktop.gui.sharing import report_text, write_copy
from tests.helpers import snapshot
from tests.request_log_factory import NEW, OLD

pytestmark = pytest.mark.gui
TIMEOUT_MS = 10_000
SCREENSHOTS = Path(__file__).resolve().parents[3] / "resources" / "screenshots"


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


# -- Forget requests… (a time range) ----------------------------------------------------------


def _forget_dialog(qtbot: QtBot, tab: ServingTab) -> ForgetRequestsDialog:
    assert tab.forget_range_button.isEnabled()
    tab.forget_range_button.click()
    dialog = tab.findChild(ForgetRequestsDialog)
    assert dialog is not None and dialog.isVisible()
    # The models offered are those that answered logged requests.
    qtbot.waitUntil(lambda: dialog.model_box.count() == 3, timeout=TIMEOUT_MS)
    return dialog


def test_forget_range_refuses_a_range_that_ends_before_it_starts(
    qtbot: QtBot, tab: ServingTab, logged: Path
) -> None:
    dialog = _forget_dialog(qtbot, tab)
    before = snapshot(logged)
    now = time.time()
    dialog.set_span(now, now - 7200)
    dialog.forget_button.click()
    assert "must be before" in dialog.message.text()
    assert dialog.message.property("error") and not dialog.running
    assert snapshot(logged) == before
    with Project.open(logged) as project:
        assert project.serving.find_request("iris-a").inputs == [{"sepal_length": 5.1}]


def test_forget_range_without_requests_says_so_and_writes_nothing(
    qtbot: QtBot, tab: ServingTab, logged: Path
) -> None:
    dialog = _forget_dialog(qtbot, tab)
    before = snapshot(logged)
    now = time.time()
    dialog.set_span(now - 30 * 86400, now - 20 * 86400)  # the log starts an hour ago
    dialog.forget_button.click()
    qtbot.waitUntil(lambda: "No request was logged" in dialog.message.text(), timeout=TIMEOUT_MS)
    assert dialog.message.property("error") and not dialog.running
    assert snapshot(logged) == before


def test_forget_range_forgets_one_models_requests_and_their_feedback(
    qtbot: QtBot, tab: ServingTab, logged: Path
) -> None:
    with Project.open(logged) as project:
        serving_store.add_feedback(project.conn, OLD, "iris-a", "setosa")
        serving_store.add_feedback(project.conn, NEW, "diab-a", 140.0)
    dialog = _forget_dialog(qtbot, tab)
    seen: list[tuple[int, int]] = []
    dialog.relay.progressed.connect(lambda done, total: seen.append((done, total)))
    now = time.time()
    dialog.set_span(now - 7200, now + 60)  # both deployments' requests ...
    dialog.choose_model("iris-mlp")  # ... but only iris-mlp's
    tab.log.selectRow(0)
    dialog.forget_button.click()
    qtbot.waitUntil(lambda: dialog.message.text().startswith("Forgot"), timeout=TIMEOUT_MS)
    assert "Forgot 4 request(s): 4 captured input(s) cleared, 1 feedback label(s) deleted" \
        in dialog.message.text()  # fmt: skip
    assert seen == [(0, 4), (4, 4)]  # the bar heard the batch (one: under 500 requests)
    assert "Forgot 4 request(s)" in tab.banner.label.text()
    with Project.open(logged) as project:
        for request_id in ("iris-a", "iris-b", "iris-bad", "iris-c"):
            record = project.serving.find_request(request_id)
            assert record is not None and record.inputs is None and record.outputs is None
        assert project.serving.find_request("diab-a").inputs == [{"age": 59, "bmi": 32.1}]
        assert serving_store.feedback_for(project.conn, "iris-a") == []
        assert len(serving_store.feedback_for(project.conn, "diab-a")) == 1
    assert b"sepal_length" not in logged.read_bytes()  # secure_delete: the bytes are gone
    if os.environ.get("LEPTON_SCREENSHOTS"):  # for the README, never on ordinary runs
        dialog.grab().save(str(SCREENSHOTS / "forget-requests-light.png"))
    dialog.reject()
    assert not dialog.isVisible()
