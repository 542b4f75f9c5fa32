"""The Serving tab's "Explain…" of a logged request, from its captured inputs."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from lepton_desktop.core.project import Project
from lepton_desktop.core.store import serving as serving_store
from lepton_desktop.gui.main_window import MainWindow
from lepton_desktop.gui.serving.poller import ServingPoller
from tests.explain_factory import explain_project  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.gui, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _fast_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ServingPoller, "INTERVAL_MS", 100)


def _logged(deployment_id: int, request_id: str, inputs: Any) -> dict[str, Any]:
    return {"deployment_id": deployment_id, "ts": time.time(), "request_id": request_id,
            "method": "POST", "path": "/predict", "protocol": "native", "model": "shop",
            "version": 1, "status": 200, "latency_ms": 2.0, "n_rows": 1, "inputs": inputs,
            "outputs": [{"label": "yes"}]}  # fmt: skip


@pytest.fixture
def project(explain_project: Path, tmp_path: Path) -> Path:  # noqa: F811
    path = tmp_path / "served.lepton"
    shutil.copy(explain_project, path)
    with Project.open(path) as opened:
        deployment = opened.serving.create(port=8765)
        loaded = [{"name": "shop", "version": 1, "aliases": []}]
        serving_store.update_deployment(opened.conn, deployment.id, status="running",
                                        url="http://127.0.0.1:8765", started_at=time.time(),
                                        loaded=loaded)  # fmt: skip
        serving_store.add_requests(opened.conn, [
            _logged(deployment.id, "with-inputs", [{"price": 7.5, "colour": "red"}]),
            _logged(deployment.id, "blind", None),
        ])  # fmt: skip
    return path


def _select(qtbot: QtBot, tab: Any, request_id: str) -> None:
    view = tab.log
    row = next(
        r for r in range(view.log.rowCount()) if view.log.record(r).request_id == request_id
    )
    view.selectRow(row)
    qtbot.waitUntil(lambda: tab.detail.request_id == request_id, timeout=10_000)


def test_a_logged_request_is_explained_and_one_without_inputs_cannot_be(
    qtbot: QtBot, window: MainWindow, project: Path, open_project: Callable[[Path], None]
) -> None:
    open_project(project)
    tab = window.serving_tab
    window.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: tab.log.log.rowCount() == 2, timeout=10_000)

    _select(qtbot, tab, "blind")
    qtbot.wait(300)  # its captured data read back
    assert not tab.explain_button.isEnabled()
    assert "did not capture" in tab.explain_button.toolTip()

    _select(qtbot, tab, "with-inputs")
    qtbot.waitUntil(tab.explain_button.isEnabled, timeout=10_000)
    dialog = tab.explain_request()
    assert dialog is not None
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.view.explanation is not None, timeout=30_000)
    explanation = dialog.view.explanation
    assert {f["column"] for f in explanation.features} == {"price", "colour"}
    assert "Integrated Gradients" in dialog.view.title.text()
    assert "the training mean of every column" in dialog.view.title.text()
    # A table's model: the request's record fills a form; one value changed, explained again.
    form = dialog.form
    qtbot.waitUntil(form.isVisible, timeout=30_000)
    assert form.texts() == {"price": "7.5", "colour": "red"}
    form.editors["price"].setText("")
    form.explain_button.click()
    assert form.error("price").startswith("enter a number (training range ")
    form.editors["price"].setText("2")
    form.editors["colour"].setCurrentText("blue")
    form.explain_button.click()
    qtbot.waitUntil(
        lambda: (
            dialog.view.explanation is not None
            and dialog.view.explanation.features[0]["value"] in (2.0, "blue")
        ),
        timeout=30_000,
    )
    with Project.open(project) as opened:
        expected = opened.explain("shop:1", record={"price": 2.0, "colour": "blue"})
    shown = {f["column"]: f for f in dialog.view.explanation.features}
    for feature in expected.features:
        assert shown[feature["column"]]["value"] == feature["value"]
        assert shown[feature["column"]]["attribution"] == pytest.approx(feature["attribution"])
