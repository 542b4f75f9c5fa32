"""The request log's deployment picker and search box, on one Serving tab (no window)
reading a real project file with two deployments' logs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from lepton_desktop.core.project import Project
from lepton_desktop.core.store import serving as serving_store
from lepton_desktop.gui.serving import log_filter
from lepton_desktop.gui.serving.log_filter import LogSearchBox, deployment_text
from lepton_desktop.gui.serving.tab import ServingTab
from tests.request_log_factory import NEW, OLD

pytestmark = pytest.mark.gui
TIMEOUT_MS = 10_000


@pytest.fixture
def tab(qtbot: QtBot, logged_tab: ServingTab) -> ServingTab:
    qtbot.waitUntil(lambda: logged_tab.requests.deployments.count() == 2, timeout=TIMEOUT_MS)
    return logged_tab


def _ids(view: object) -> list[str]:
    return [r.request_id for r in view.log.records]  # type: ignore[attr-defined]


def _pick(tab: ServingTab, deployment_id: int) -> None:
    """Choose a deployment as the user does (the picker's ``activated``)."""
    index = tab.requests.deployments.findData(deployment_id)
    tab.requests.deployments.setCurrentIndex(index)
    tab.requests.deployments.activated.emit(index)


def test_the_picker_lists_deployments_newest_first_and_reaches_earlier_logs(
    qtbot: QtBot, tab: ServingTab, logged: Path
) -> None:
    picker = tab.requests.deployments
    texts = [picker.itemText(i) for i in range(picker.count())]
    assert texts[0].startswith(f"#{NEW} ") and texts[1].startswith(f"#{OLD} ")
    for text, parts in zip(texts, [("diabetes-mlp", "http://127.0.0.1:8766", "running"),
                                   ("iris-mlp", "http://127.0.0.1:8765", "stopped")],
                           strict=True):  # fmt: skip
        assert all(part in text for part in parts), text
    # The running server's log is shown first, as before.
    qtbot.waitUntil(lambda: _ids(tab.log) == ["diab-a", "diab-slow", "diab-b"], timeout=TIMEOUT_MS)
    assert picker.current_id() == NEW

    _pick(tab, OLD)
    qtbot.waitUntil(
        lambda: _ids(tab.log) == ["iris-a", "iris-b", "iris-bad", "iris-c"], timeout=TIMEOUT_MS
    )
    assert (tab.total, tab.errors) == (4, 1)
    assert "server stopped" in tab.counters.text()
    assert tab.panel.status.text().startswith("Running since")  # the server is still #2
    assert tab.poller.cursor.pinned_id == OLD

    # A new server starts elsewhere: listed at the top, but the picked log stays shown.
    with Project.open(logged) as project:
        third = serving_store.create_deployment(
            project.conn, host="127.0.0.1", port=8767, token=None, models=["iris-mlp"],
            options={},
        )  # fmt: skip
        serving_store.update_deployment(project.conn, NEW, status="stopped")
        serving_store.update_deployment(
            project.conn, third, status="running", url="http://127.0.0.1:8767",
            started_at=time.time(),
        )  # fmt: skip
    qtbot.waitUntil(lambda: picker.count() == 3, timeout=TIMEOUT_MS)
    assert picker.itemData(0) == third and "8767" in picker.itemText(0)
    assert "stopped" in picker.itemText(1)  # #2's line follows its status
    assert picker.current_id() == OLD and len(_ids(tab.log)) == 4

    # Picking the server's own deployment follows the server again.
    _pick(tab, third)
    qtbot.waitUntil(lambda: tab.viewed is not None and tab.viewed.id == third, timeout=TIMEOUT_MS)
    assert tab.poller.cursor.pinned_id is None and _ids(tab.log) == []

    # The project closed: nothing of it stays offered.
    tab.set_session(None)
    assert picker.count() == 0 and _ids(tab.log) == []


def test_the_search_box_waits_for_a_pause_then_searches_in_sql(
    qtbot: QtBot, tab: ServingTab, logged: Path
) -> None:
    panel = tab.requests
    qtbot.waitUntil(lambda: len(_ids(tab.log)) == 3, timeout=TIMEOUT_MS)
    searches = panel.searches
    qtbot.keyClicks(panel.search, "time")
    assert panel.search.query == "" and panel.stack.currentWidget() is tab.log  # not yet
    qtbot.waitUntil(lambda: panel.stack.currentWidget() is panel.results, timeout=TIMEOUT_MS)
    assert panel.searches == searches + 1  # one search for four key presses
    assert _ids(panel.results) == ["diab-slow"]
    assert panel.status.text() == "1 request matches “time”"

    # New requests that match join the results shown; the live log goes on behind.
    with Project.open(logged) as project:
        serving_store.add_requests(project.conn, [{
            "deployment_id": NEW, "ts": time.time(), "request_id": "diab-late", "method": "POST",
            "path": "/predict", "status": 504, "latency_ms": 30000.0, "error": "timeout",
        }])  # fmt: skip
    qtbot.waitUntil(lambda: _ids(panel.results) == ["diab-slow", "diab-late"], timeout=TIMEOUT_MS)
    assert _ids(tab.log)[-1] == "diab-late"

    # A click on a result shows what it sent; it stays selected as more arrive.
    panel.results.selectRow(0)
    qtbot.waitUntil(lambda: "no answer within" in tab.detail.toPlainText(), timeout=TIMEOUT_MS)
    with Project.open(logged) as project:
        serving_store.add_requests(project.conn, [{
            "deployment_id": NEW, "ts": time.time(), "request_id": "diab-later",
            "method": "POST", "path": "/predict", "status": 504, "latency_ms": 30000.0,
            "error": "timeout",
        }])  # fmt: skip
    qtbot.waitUntil(lambda: len(_ids(panel.results)) == 3, timeout=TIMEOUT_MS)
    assert panel.results.currentIndex().row() == 0  # still diab-slow
    assert "no answer within" in tab.detail.toPlainText()

    # Another deployment: the same words, searched in its log.
    panel.search.setText("iris-b")
    qtbot.waitUntil(lambda: "“iris-b”" in panel.status.text(), timeout=TIMEOUT_MS)
    assert _ids(panel.results) == []  # deployment 2 has no such request
    _pick(tab, OLD)
    qtbot.waitUntil(lambda: _ids(panel.results) == ["iris-b", "iris-bad"], timeout=TIMEOUT_MS)
    assert panel.status.text() == "2 requests match “iris-b”"

    # Cleared: the live log is back at once, whole.
    panel.search.clear()
    assert panel.stack.currentWidget() is tab.log and panel.status.isHidden()
    qtbot.waitUntil(lambda: len(_ids(tab.log)) == 4, timeout=TIMEOUT_MS)


def test_search_box_debounces_and_bounds_its_text(qtbot: QtBot) -> None:
    box = LogSearchBox()
    qtbot.addWidget(box)
    sent: list[str] = []
    box.searchChanged.connect(sent.append)
    qtbot.keyClicks(box, "  setosa 400 ")
    assert sent == []
    qtbot.waitUntil(lambda: sent == ["setosa 400"], timeout=TIMEOUT_MS)
    qtbot.keyClick(box, Qt.Key.Key_Space)  # the same words: nothing new to search
    qtbot.wait(log_filter.SEARCH_DEBOUNCE_MS * 2)
    assert sent == ["setosa 400"]
    box.clear()
    assert sent == ["setosa 400", ""]  # clearing is at once
    assert box.maxLength() == 1000


def test_a_deployment_line_names_when_what_where_and_how(logged: Path) -> None:
    with Project.open(logged) as project:
        old, new = project.serving.get(OLD), project.serving.get(NEW)
    day = time.strftime("%Y-%m-%d", time.localtime(old.started_at))
    assert deployment_text(old, now=old.started_at + 2 * 86400).startswith(f"#1  {day} ")
    same_day = deployment_text(new, now=new.started_at)
    clock = time.strftime("%H:%M:%S", time.localtime(new.started_at))
    assert same_day == f"#2  {clock}  diabetes-mlp  http://127.0.0.1:8766  running"
