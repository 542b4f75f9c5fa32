"""The Monitoring tab's Requests page (offscreen) on a real server's log: filters, pages,
export and replay in a real ``requests`` worker, retention."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from pytestqt.qtbot import QtBot

from lepton_desktop.core.monitoring.requests import RequestFilter
from lepton_desktop.core.project import Project
from lepton_desktop.gui.monitoring.requests_panel import PAGE_ROWS
from lepton_desktop.gui.session import ProjectSession
from tests.gui.monitoring.conftest import shown_tab
from tests.serving_factory import copy_project, rows, running, serving_project  # noqa: F401

pytestmark = [pytest.mark.gui, pytest.mark.slow]
#: Set to a folder to save the page's picture there (the README's screenshot).
SCREENSHOT_ENV = "LEPTON_SCREENSHOTS"


@pytest.fixture
def served(serving_project: Path, tmp_path: Path) -> Path:  # noqa: F811
    """iris:1 answered 250 requests through a real server, 5 of them refused."""
    project = copy_project(serving_project, tmp_path)
    iris = rows()
    with running(project) as runner, httpx.Client(base_url=runner.url, timeout=10) as client:
        for i in range(250):
            records = [iris[i % 150]] if i % 60 else [{"sepal_length": "oops"}]
            client.post("/predict", json={"model": "iris:1", "records": records})
    return project


def test_requests_page_filters_pages_exports_and_replays(
    qtbot: QtBot, served: Path, tmp_path: Path,
    open_session: Callable[[Path], ProjectSession],
) -> None:  # fmt: skip
    tab = shown_tab(qtbot, open_session(served))
    tab.resize(1500, 900)
    panel = tab.requests
    tab.side_tabs.setCurrentWidget(panel)
    qtbot.waitUntil(lambda: panel.page is not None, timeout=10_000)
    assert panel.table.rowCount() == PAGE_ROWS and panel.older_button.isEnabled()
    newest = [r.id for r in panel.page.records]
    panel.older_button.click()
    qtbot.waitUntil(lambda: panel.page.before == newest[-1], timeout=10_000)
    assert panel.table.rowCount() == 50 and max(r.id for r in panel.page.records) < newest[-1]
    panel.newer_button.click()
    qtbot.waitUntil(lambda: panel.page.before is None, timeout=10_000)

    panel.status_box.setCurrentIndex(2)  # 4xx
    panel.status_box.activated.emit(2)
    qtbot.waitUntil(lambda: panel.page.selection.status == "4xx", timeout=10_000)
    assert panel.table.rowCount() == 5 and panel.table.item(0, 2).text() == "400"
    panel.table.setCurrentCell(0, 0)
    assert "oops" in panel.detail.toPlainText()

    panel.status_box.setCurrentIndex(1)  # 2xx
    panel.status_box.activated.emit(1)
    qtbot.waitUntil(lambda: panel.page.selection.status == "2xx", timeout=10_000)
    out = tmp_path / "answered.parquet"
    panel.exportRequested.emit(panel.page.selection, str(out))
    qtbot.waitUntil(lambda: panel.result.text().startswith("Exported"), timeout=180_000)
    assert pq.read_table(out).num_rows == 245
    panel.replay_box.setCurrentIndex(panel.replay_box.findData("iris:2"))
    panel.replay_button.click()
    qtbot.waitUntil(lambda: panel.result.text().startswith("Replayed"), timeout=180_000)
    with Project.open(served) as project:
        expected = project.replay_requests(RequestFilter(status="2xx"), "iris:2")
    assert f"{expected['agreement']:.1%} agree" in panel.result.text()
    assert f"{expected['changed']:,} changed" in panel.result.text()
    if os.environ.get(SCREENSHOT_ENV):
        tab.grab().save(str(Path(os.environ[SCREENSHOT_ENV]) / "monitoring-requests-light.png"))

    panel.retentionRequested.emit("forever")
    qtbot.waitUntil(lambda: "--retention 'forever'" in panel.result.text(), timeout=10_000)
    panel.retention_edit.setText("30d")
    panel.retention_button.click()
    qtbot.waitUntil(lambda: panel.result.text().startswith("Retention 30d"), timeout=10_000)
    with Project.open(served) as project:
        assert project.request_log.retention().label() == "30d"


def test_model_update_page_compares_promotes_and_retrains(
    qtbot: QtBot, served: Path, open_session: Callable[[Path], ProjectSession]
) -> None:
    with Project.open(served) as project:
        project.models.set_alias("iris:1", "champion")
        expected = project.compare_candidate("iris", 2)
    tab = shown_tab(qtbot, open_session(served))
    page = tab.update_page
    tab.side_tabs.setCurrentWidget(page)
    qtbot.waitUntil(lambda: page.model_box.count() == 2, timeout=10_000)  # diabetes, iris
    page.model_box.setCurrentIndex(page.model_box.findText("iris"))
    page.model_box.activated.emit(page.model_box.currentIndex())
    assert [page.candidate_box.itemText(i) for i in range(page.candidate_box.count())] == [
        "2", "1 (champion)"]  # fmt: skip
    page.compare_button.click()
    qtbot.waitUntil(lambda: page.result is not None, timeout=180_000)
    assert page.result["source"] == "replay" and page.result["requests"] == 245
    assert page.result["agreement"] == pytest.approx(expected["agreement"])
    assert page.table.item(0, 2).text() == f"{expected['agreement']:.1%} agree"
    page.retrain_button.click()
    qtbot.waitUntil(lambda: "failed" in page.status.text(), timeout=180_000)
    assert "no labelled served rows of iris" in page.status.text()
    page.promote_button.click()
    qtbot.waitUntil(lambda: "is the champion now" in page.status.text(), timeout=10_000)
    with Project.open(served) as project:
        assert project.models.get("iris@champion").version == 2
