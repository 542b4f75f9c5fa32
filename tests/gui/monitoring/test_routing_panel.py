"""The Model update page's live routing, on a real server started from the session.

iris:2 is served (the newest version answers requests that name none); the page
makes iris:1 a canary at 50% (the server restarts on the same port, and real clients
get answers from both versions), then a shadow (every answer from iris:2, a logged copy
from iris:1), compares them side by side from the shadow rows, and promotes iris:1. A
candidate the server would not load is refused before the server is touched.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from pytestqt.qtbot import QtBot

from lepton_desktop.core.entities import Deployment
from lepton_desktop.core.project import Project
from lepton_desktop.gui.monitoring.tab import MonitoringTab
from lepton_desktop.gui.session import Changes, ProjectSession
from tests.gui.conftest import WORKER_TIMEOUT_MS
from tests.gui.monitoring.conftest import shown_tab
from tests.serving_factory import copy_project, rows, serving_project  # noqa: F401

pytestmark = [pytest.mark.gui, pytest.mark.slow]
#: Set to a folder to save the page's picture there (the README's screenshot).
SCREENSHOT_ENV = "LEPTON_SCREENSHOTS"
#: A stop and a start of the server (a loaded machine takes a while to import torch).
RESTART_TIMEOUT_MS = 180_000


def _start_server(qtbot: QtBot, session: ProjectSession) -> None:
    """Queue a server of every model on a free port and start its worker, as the
    Serving tab's Start does."""
    started: list[int] = []

    def queued(result: tuple[Deployment, int]) -> None:
        session.jobs.start("serve", result[1])
        started.append(result[1])

    session.command(lambda p: p.serving.queue(port=0), Changes(jobs=True), queued)
    qtbot.waitUntil(lambda: bool(started), timeout=10_000)


def _running(tab: MonitoringTab, previous: int | None = None) -> bool:
    deployment = tab.update_page.routing.deployment
    return (deployment is not None and deployment.status == "running"
            and deployment.id != previous)  # fmt: skip


def _answering_versions(url: str, requests: int) -> list[int]:
    iris = rows()
    with httpx.Client(base_url=url, timeout=30) as client:
        answers = [client.post("/predict", json={"model": "iris", "records": [iris[i * 7 % 150]]})
                   for i in range(requests)]  # fmt: skip
    assert {a.status_code for a in answers} == {200}, answers[0].text
    return [int(a.json()["model"].rsplit(":", 1)[1]) for a in answers]  # "iris:2"


def _apply(qtbot: QtBot, tab: MonitoringTab, mode: int, share: int = 10) -> Deployment:
    box = tab.update_page.routing
    before = box.deployment
    assert before is not None
    box.mode.setCurrentIndex(mode)
    box.share.setValue(share)
    box.apply_button.click()
    qtbot.waitUntil(lambda: "restarted as deployment" in tab.update_page.status.text(),
                    timeout=RESTART_TIMEOUT_MS)  # fmt: skip
    qtbot.waitUntil(lambda: _running(tab, before.id), timeout=RESTART_TIMEOUT_MS)
    after = box.deployment
    assert after is not None and after.url == before.url  # the same address for clients
    return after


def test_canary_and_shadow_set_live_compared_and_promoted(
    qtbot: QtBot,
    serving_project: Path,  # noqa: F811
    tmp_path: Path,
    open_session: Callable[[Path], ProjectSession],
) -> None:
    path = copy_project(serving_project, tmp_path)
    session = open_session(path)
    tab = shown_tab(qtbot, session)
    page, box = tab.update_page, tab.update_page.routing
    tab.side_tabs.setCurrentWidget(page)
    qtbot.waitUntil(lambda: page.model_box.findText("iris") >= 0, timeout=10_000)
    page.model_box.setCurrentIndex(page.model_box.findText("iris"))
    page.model_box.activated.emit(page.model_box.currentIndex())
    page.candidate_box.setCurrentIndex(page.candidate_box.findData(1))
    assert "not running" in box.server.text() and not box.apply_button.isEnabled()

    _start_server(qtbot, session)
    try:
        _route_and_compare(qtbot, tab, path)
    finally:
        for job_id in session.jobs.running_ids():
            session.jobs.cancel(job_id)
        qtbot.waitUntil(lambda: not session.jobs.running_ids(), timeout=WORKER_TIMEOUT_MS)


def _route_and_compare(qtbot: QtBot, tab: MonitoringTab, path: Path) -> None:
    page, box = tab.update_page, tab.update_page.routing
    qtbot.waitUntil(lambda: _running(tab), timeout=WORKER_TIMEOUT_MS)
    assert "the champion answers every request of iris" in box.server.text()
    url = box.deployment.url
    assert set(_answering_versions(url, 10)) == {2}

    # Canary: iris:1 answers about half of the requests naming no version.
    canary = _apply(qtbot, tab, mode=1, share=50)
    assert canary.options["canary"] == [{"model": "iris", "version": 1, "share": 0.5}]
    assert "iris:1 answers 50% of iris's requests (canary)" in box.server.text()
    versions = _answering_versions(url, 60)
    assert set(versions) == {1, 2} and 10 <= versions.count(1) <= 50

    # Shadow: iris:2 answers everything; iris:1 predicts a logged copy of each.
    shadow = _apply(qtbot, tab, mode=2)
    assert shadow.options == {**canary.options, "canary": [],
                              "shadow": [{"model": "iris", "version": 1}]}  # fmt: skip
    assert "iris:1 gets a copy of every request (shadow)" in box.server.text()
    assert set(_answering_versions(url, 40)) == {2}
    with Project.open(path) as project:
        qtbot.waitUntil(lambda: project.compare_candidate("iris", 1)["requests"] >= 40,
                        timeout=WORKER_TIMEOUT_MS)  # fmt: skip
    page.compare_button.click()
    qtbot.waitUntil(lambda: page.result is not None, timeout=180_000)
    assert page.result["source"] == "shadow" and page.result["requests"] >= 40
    assert page.table.item(0, 2).text() == f"{page.result['agreement']:.1%} agree"
    if os.environ.get(SCREENSHOT_ENV):
        tab.resize(1400, 900)
        tab.grab().save(str(Path(os.environ[SCREENSHOT_ENV]) / "monitoring-update-light.png"))

    # Promote from there: the running server follows the alias (its registry watch).
    page.promote_button.click()
    qtbot.waitUntil(lambda: "is the champion now" in page.status.text(), timeout=10_000)
    qtbot.waitUntil(lambda: set(_answering_versions(url, 3)) == {1}, timeout=30_000)

    # Back to the champion only, then a refused candidate: the server keeps running.
    _apply(qtbot, tab, mode=0)
    with Project.open(path) as project:
        project.models.archive("iris:2")
    running = box.deployment
    page.candidate_box.setCurrentIndex(page.candidate_box.findData(2))
    box.mode.setCurrentIndex(1)
    box.apply_button.click()
    qtbot.waitUntil(lambda: "archived" in page.status.text(), timeout=10_000)
    with Project.open(path) as project:
        assert project.serving.active().id == running.id
        assert project.serving.get(running.id).status == "running"
