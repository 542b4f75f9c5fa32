"""The Serving tab's per-model switch for personal data in the request log, with a real
``serve`` worker: off (the default), a value of a column found to hold personal data
is logged redacted; switched on (after the confirmation), the running server keeps it
in clear; switched off again, it redacts again."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from lepton_desktop.core.project import Project
from lepton_desktop.gui.main_window import MainWindow
from lepton_desktop.gui.serving import ops
from lepton_desktop.gui.serving.personal_data import CAPTURE_TEXT
from lepton_desktop.gui.serving.poller import ServingPoller
from lepton_desktop.gui.serving.snippets import snippet
from lepton_desktop.gui.serving.tab import ServingTab
from tests.gui.conftest import WORKER_TIMEOUT_MS
from tests.helpers import write_csv

pytestmark = [pytest.mark.gui, pytest.mark.slow]
SCREENSHOTS = Path(__file__).resolve().parents[3] / "resources" / "screenshots"
SECRET = "alice@private.example"
REDACTED = "<redacted email>"


@pytest.fixture(scope="module")
def _people(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained on rows with an e-mail column (flagged: never a feature)."""
    folder = tmp_path_factory.mktemp("personal")
    rows = [[f"user{i}@mail.example", (i * 37) % 100 / 10, (i * 11) % 7, "ab"[i % 2]]
            for i in range(80)]  # fmt: skip
    source = write_csv(folder / "people.csv", ["email", "x1", "x2", "y"], rows)
    path = folder / "people.lepton"
    with Project.create(path) as project:
        project.import_dataset(source, "people", target="y")
        project.train("people", arch="mlp", epochs=1, model_name="people")
    return path


@pytest.fixture
def people(_people: Path, tmp_path: Path) -> Path:
    path = tmp_path / "people.lepton"
    shutil.copy(_people, path)
    return path


def _predict(url: str) -> str:
    record = {"email": SECRET, "x1": 1.5, "x2": 3}
    answer = httpx.post(f"{url}/predict", json={"model": "people", "records": [record]},
                        timeout=30)  # fmt: skip
    assert answer.status_code == 200, answer.text
    return answer.headers["x-request-id"]


def _logged_email(path: Path, request_id: str) -> str:
    """The e-mail the log kept for a request (waits for the server to ship it)."""
    deadline = time.monotonic() + WORKER_TIMEOUT_MS / 1000
    with Project.open(path) as project:
        while time.monotonic() < deadline:
            found = project.serving.find_request(request_id)
            if found is not None and found.inputs:
                return str(found.inputs[0]["email"])
            time.sleep(0.05)
    raise AssertionError(f"request {request_id} was never logged")


def _answer(qtbot: QtBot, button_text: str) -> str:
    """Press ``button_text`` in the question shown; return the question's text."""

    def shown() -> list[QMessageBox]:
        return [w for w in QApplication.topLevelWidgets()
                if isinstance(w, QMessageBox) and w.isVisible()]  # fmt: skip

    qtbot.waitUntil(lambda: bool(shown()), timeout=10_000)
    box = shown()[-1]
    text = box.text()
    next(b for b in box.buttons() if b.text() == button_text).click()
    return text


def _stored(path: Path) -> list[str]:
    with Project.open(path) as project:
        return project.capture_pii_models()


def test_the_switch_follows_the_stored_setting_and_the_running_server_follows_it(
    qtbot: QtBot,
    window: MainWindow,
    people: Path,
    open_project: Callable[[Path], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ServingPoller, "INTERVAL_MS", 100)
    open_project(people)
    tab: ServingTab = window.serving_tab
    window.tabs.setCurrentWidget(tab)
    box = tab.personal
    qtbot.waitUntil(lambda: box.model_box.currentText() == "people", timeout=10_000)
    assert box.capture.text() == CAPTURE_TEXT
    assert box.capture.isEnabled() and not box.capture.isChecked()  # off by default
    assert "Redacted" in box.note.text() and "email (email)" in box.note.text()

    tab.panel.port.setValue(0)
    qtbot.mouseClick(tab.panel.toggle, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.panel.status.text().startswith("Running since"),
                    timeout=WORKER_TIMEOUT_MS)  # fmt: skip
    url = tab.panel.url.text()
    assert _logged_email(people, _predict(url)) == REDACTED
    qtbot.waitUntil(lambda: tab.log.log.rowCount() == 1, timeout=WORKER_TIMEOUT_MS)
    tab.log.selectRow(0)
    qtbot.waitUntil(lambda: REDACTED in tab.detail.toPlainText(), timeout=10_000)
    _save(window, "serving-personal-data-light.png")

    # Switching on asks first; Cancel stores nothing and the box stays off.
    box.capture.click()
    question = _answer(qtbot, "Cancel")
    assert "email (email)" in question and "anyone who can read the file" in question
    assert not box.capture.isChecked() and _stored(people) == []

    box.capture.click()
    _answer(qtbot, "Capture")
    qtbot.waitUntil(box.capture.isChecked, timeout=10_000)
    assert _stored(people) == ["people"] and "Kept in clear" in box.note.text()
    # The running server follows the stored setting within a second (no restart).
    deadline = time.monotonic() + 15
    while _logged_email(people, _predict(url)) != SECRET:
        assert time.monotonic() < deadline, "the running server kept redacting"
        time.sleep(0.2)

    # Switching off needs no question, and the server redacts again.
    box.capture.click()
    qtbot.waitUntil(lambda: not box.capture.isChecked() and _stored(people) == [],
                    timeout=10_000)  # fmt: skip
    deadline = time.monotonic() + 15
    while _logged_email(people, _predict(url)) != REDACTED:
        assert time.monotonic() < deadline, "the running server kept capturing"
        time.sleep(0.2)


def _save(window: MainWindow, name: str) -> None:
    # Rendered for the README when asked (LEPTON_SCREENSHOTS=1), never on ordinary runs.
    if os.environ.get("LEPTON_SCREENSHOTS"):
        window.resize(1400, 820)
        QApplication.processEvents()
        window.grab().save(str(SCREENSHOTS / name))


def test_the_snippets_example_record_carries_no_personal_data(people: Path) -> None:
    with Project.open(people) as project:
        sample = ops.read_snippet_sample(project, "people")
    assert sample.record["email"] == ops.EXAMPLE_PERSONAL_DATA["email"]
    assert isinstance(sample.record["x1"], float)  # the other columns: a real row's values
    curl = snippet("curl", "http://127.0.0.1:9999", sample, None)
    assert "@mail.example" not in curl and "someone@example.com" in curl
