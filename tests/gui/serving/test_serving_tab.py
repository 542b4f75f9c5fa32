"""The Serving tab in the real window on real project files: its log, settings, models
and snippets, then one real ``serve`` worker answering real HTTP requests."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from lepton_desktop.core.project import Project
from lepton_desktop.core.store import serving as serving_store
from lepton_desktop.gui.main_window import MainWindow
from lepton_desktop.gui.serving import ops
from lepton_desktop.gui.serving.poller import ServingPoller
from lepton_desktop.gui.serving.request_log import COLUMNS
from lepton_desktop.gui.serving.snippets import snippet
from lepton_desktop.gui.serving.tab import ServingTab
from tests.gui.conftest import WORKER_TIMEOUT_MS
from tests.helpers import snapshot

pytestmark = pytest.mark.gui
OpenProject = Callable[[Path], None]


@pytest.fixture(autouse=True)
def _fast_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ServingPoller, "INTERVAL_MS", 100)


def _log_rows(deployment_id: int, start: int, count: int, **fields: Any) -> list[dict[str, Any]]:
    now = time.time()
    return [
        {
            "deployment_id": deployment_id, "ts": now - 1 + i * 0.01, "request_id": f"req-{i}",
            "method": "POST", "path": "/predict", "protocol": "predict", "model": "iris-mlp",
            "version": 2, "status": 200, "latency_ms": 1.5 + i % 3, "n_rows": 1,
            "inputs": [{"sepal_length": 5.1 + i}], "outputs": [{"label": "setosa"}],
        } | fields
        for i in range(start, start + count)
    ]  # fmt: skip


def _running_deployment(path: Path) -> int:
    """A deployment row as a running server leaves it (no worker: the tab only reads)."""
    with Project.open(path) as project:
        deployment = project.serving.create(port=8765)
        serving_store.update_deployment(
            project.conn, deployment.id, status="running", url="http://127.0.0.1:8765",
            started_at=time.time(), loaded=[
                {"name": "iris-mlp", "version": 1, "aliases": []},
                {"name": "iris-mlp", "version": 2, "aliases": ["champion"]},
            ],
        )  # fmt: skip
        project.models.set_alias("iris-mlp:2", "champion")
        serving_store.add_requests(project.conn, _log_rows(deployment.id, 0, 5))
    return deployment.id


def _open_serving(
    qtbot: QtBot, window: MainWindow, path: Path, open_project: OpenProject
) -> ServingTab:
    open_project(path)
    tab = window.serving_tab
    window.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: len(tab.versions) == 2, timeout=10_000)
    return tab


def test_snippets_send_a_real_row_to_the_shown_url(trained: Path) -> None:
    with Project.open(trained) as project:
        sample = ops.read_snippet_sample(project, "iris-mlp")
        first = project.rows(project.dataset("iris"), 0, 1)[0]
    assert sample.model == "iris-mlp" and sample.version == 2
    assert [i["name"] for i in sample.inputs] == [
        "sepal_length",
        "sepal_width",
        "petal_length",
        "petal_width",
    ]
    assert sample.record["sepal_length"] == first[0]
    url = "http://127.0.0.1:9999"
    curl = snippet("curl", url, sample, None)
    assert f"{url}/predict" in curl and '"iris-mlp"' in curl and "Authorization" not in curl
    assert str(first[0]) in curl
    httpx_code = snippet("Python (httpx)", url, sample, "s3cret-token-of-16+")
    compile(httpx_code, "<snippet>", "exec")
    assert 'base_url="http://127.0.0.1:9999"' in httpx_code
    assert "Bearer s3cret-token-of-16+" in httpx_code
    triton = snippet("tritonclient", url, sample, None)
    compile(triton, "<snippet>", "exec")
    assert 'InferenceServerClient("127.0.0.1:9999")' in triton
    assert triton.count("httpclient.InferInput(") == 4


# -- the tab on a project file --------------------------------------------------------------


def test_tab_follows_a_running_server_log_promotes_and_rolls_back(
    qtbot: QtBot, window: MainWindow, trained: Path, open_project: OpenProject
) -> None:
    deployment_id = _running_deployment(trained)
    tab = _open_serving(qtbot, window, trained, open_project)
    qtbot.waitUntil(lambda: tab.log.log.rowCount() == 5, timeout=10_000)
    assert tab.panel.status.text().startswith("Running since")
    assert tab.panel.toggle.text() == "Stop server"
    assert tab.panel.url.text() == "http://127.0.0.1:8765"
    assert not tab.panel.settings.isEnabled()  # start-up settings are locked while running
    tab.panel.copy_url.click()
    assert QGuiApplication.clipboard().text() == "http://127.0.0.1:8765"
    qtbot.waitUntil(
        lambda: "http://127.0.0.1:8765/predict" in tab.snippets.text.toPlainText(), timeout=10_000
    )

    # New rows arrive incrementally; the error is counted and coloured.
    with Project.open(trained) as project:
        serving_store.add_requests(project.conn, _log_rows(deployment_id, 5, 2))
        serving_store.add_requests(
            project.conn,
            _log_rows(
                deployment_id,
                7,
                1,
                status=422,
                error="record 0: missing 'petal_width'",
                inputs=None,
                outputs=None,
            ),
        )
    qtbot.waitUntil(lambda: tab.log.log.rowCount() == 8, timeout=10_000)
    assert (tab.total, tab.errors) == (8, 1)
    assert "<b>8</b> requests" in tab.counters.text()
    assert "<b>1</b> errors" in tab.counters.text()
    assert tab.charts.stats.rate(time.time())[1].sum() == 8

    # Clicking a row shows what it sent and got back (read from the file on demand).
    tab.log.selectRow(1)
    qtbot.waitUntil(lambda: '"sepal_length": 6.1' in tab.detail.toPlainText(), timeout=10_000)
    assert '"label": "setosa"' in tab.detail.toPlainText()
    tab.log.selectRow(7)
    qtbot.waitUntil(lambda: "were not captured" in tab.detail.toPlainText(), timeout=10_000)
    assert "missing 'petal_width'" in tab.detail.toPlainText()

    # Promote v1, then roll back to it from v2 (the server is told by the alias alone).
    loaded = tab.loaded
    loaded.select("iris-mlp:2")
    assert not loaded.promote.isEnabled()  # already the champion
    assert loaded.rollback.isEnabled()
    loaded.rollback.click()
    qtbot.waitUntil(lambda: _champion(trained) == 1, timeout=10_000)
    with Project.open(trained) as project:  # what the server reports once it follows
        project.serving.update(deployment_id, loaded=[
            {"name": "iris-mlp", "version": 1, "aliases": ["champion"]},
            {"name": "iris-mlp", "version": 2, "aliases": []},
        ])  # fmt: skip
    qtbot.waitUntil(lambda: _tree_aliases(tab) == {"v1": "champion", "v2": ""}, timeout=10_000)
    loaded.select("iris-mlp:2")
    qtbot.waitUntil(loaded.promote.isEnabled, timeout=10_000)
    assert not loaded.rollback.isEnabled()  # v1 is the oldest: nothing before it
    loaded.promote.click()
    qtbot.waitUntil(lambda: _champion(trained) == 2, timeout=10_000)

    # The server stops (another window pressed Stop): the tab says so.
    with Project.open(trained) as project:
        project.serving.update(deployment_id, status="stopped", stopped_at=time.time())
    qtbot.waitUntil(lambda: tab.panel.toggle.text() == "Start server", timeout=10_000)
    assert tab.panel.status.text() == "Stopped"
    assert tab.panel.settings.isEnabled()
    assert tab.loaded.tree.topLevelItemCount() == 0
    assert tab.log.log.rowCount() == 8  # the log of the last run stays readable


def _tree_aliases(tab: ServingTab) -> dict[str, str]:
    tree = tab.loaded.tree
    if tree.topLevelItemCount() != 1:
        return {}
    model = tree.topLevelItem(0)
    return {
        model.child(i).text(0).split()[0]: model.child(i).text(1)
        for i in range(model.childCount())
    }


def _default_version(tab: ServingTab) -> str:
    model = tab.loaded.tree.topLevelItem(0)
    texts = [model.child(i).text(0) for i in range(model.childCount())]
    return next(t.split()[0] for t in texts if t.endswith("(default)"))


def _champion(path: Path) -> int | None:
    with Project.open(path) as project:
        return next((v.version for v in project.models.list() if "champion" in v.aliases), None)


def test_hidden_tab_stops_polling_and_catches_up_when_shown(
    qtbot: QtBot, window: MainWindow, trained: Path, open_project: OpenProject
) -> None:
    deployment_id = _running_deployment(trained)
    tab = _open_serving(qtbot, window, trained, open_project)
    qtbot.waitUntil(lambda: tab.log.log.rowCount() == 5, timeout=10_000)
    assert tab.poller.timer.isActive()

    window.tabs.setCurrentWidget(window.training_tab)
    assert not tab.poller.timer.isActive()
    qtbot.waitUntil(lambda: not tab.poller._pending, timeout=10_000)  # a read in flight
    polls = tab.poller.polls
    with Project.open(trained) as project:
        serving_store.add_requests(project.conn, _log_rows(deployment_id, 5, 3))
    qtbot.wait(4 * ServingPoller.INTERVAL_MS)
    assert tab.poller.polls == polls  # hidden: nothing read
    assert tab.log.log.rowCount() == 5

    window.tabs.setCurrentWidget(tab)
    assert tab.poller.timer.isActive()
    qtbot.waitUntil(lambda: tab.log.log.rowCount() == 8, timeout=10_000)


def test_refused_settings_name_the_problem_and_write_nothing(
    qtbot: QtBot, window: MainWindow, trained: Path, open_project: OpenProject
) -> None:
    tab = _open_serving(qtbot, window, trained, open_project)
    before = snapshot(trained)
    tab.panel.cors.setPlainText("https://app.example.com\nnot an origin")
    qtbot.mouseClick(tab.panel.toggle, Qt.MouseButton.LeftButton)
    assert tab.panel.error.isVisible()
    assert "CORS origin on line 2 ('not an origin')" in tab.panel.error.text()

    # Core refuses too: every model was archived meanwhile (by the command line, say).
    tab.panel.cors.setPlainText("")
    with Project.open(trained) as project:
        project.models.archive("iris-mlp:1")
        project.models.archive("iris-mlp:2")
    before = snapshot(trained)
    qtbot.mouseClick(tab.panel.toggle, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "no model to serve" in tab.panel.error.text(), timeout=10_000)
    assert tab.panel.toggle.isEnabled()
    after = snapshot(trained)
    assert after["counts"]["deployments"] == before["counts"]["deployments"] == 0
    assert after["counts"]["jobs"] == before["counts"]["jobs"]
    assert after["integrity"] == "ok"


def test_local_network_needs_a_token_and_shows_it(
    qtbot: QtBot, window: MainWindow, trained: Path, open_project: OpenProject
) -> None:
    tab = _open_serving(qtbot, window, trained, open_project)
    panel = tab.panel
    assert panel.options([]).host == "127.0.0.1" and panel.options([]).token is None
    panel.lan.setChecked(True)
    qtbot.waitUntil(lambda: len(panel.token.text()) >= 16, timeout=10_000)
    first = panel.token.text()
    options = panel.options([])
    assert (options.host, options.token) == ("0.0.0.0", first)
    assert panel.network_label.isVisible() and "token" in panel.network_label.text()
    panel.regenerate.click()
    qtbot.waitUntil(lambda: panel.token.text() != first, timeout=10_000)
    panel.copy_token.click()
    assert QGuiApplication.clipboard().text() == panel.token.text()
    panel.lan.setChecked(False)
    assert panel.options([]).token is None


# -- a real server -------------------------------------------------------------------------


@pytest.mark.slow
def test_start_real_server_answer_requests_see_them_logged_and_stop(
    qtbot: QtBot, window: MainWindow, trained: Path, open_project: OpenProject
) -> None:
    tab = _open_serving(qtbot, window, trained, open_project)
    tab.panel.port.setValue(0)  # any free port: the tab shows the one the server got
    qtbot.waitUntil(lambda: tab.snippets.sample is not None, timeout=10_000)
    url = _start(qtbot, tab)
    assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
    qtbot.waitUntil(lambda: _tree_aliases(tab) == {"v1": "", "v2": ""}, timeout=10_000)
    assert _default_version(tab) == "v2"  # what a request naming only the model gets
    qtbot.waitUntil(lambda: f"{url}/predict" in tab.snippets.text.toPlainText(), timeout=10_000)

    record = tab.snippets.sample.record  # the dataset's first row, as the snippets send it
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(4):
            answer = client.post("/predict", json={"model": "iris-mlp", "records": [record]})
            assert answer.status_code == 200, answer.text
        bad = client.post("/predict", json={"records": [{"sepal_length": 5.0}]})
        assert 400 <= bad.status_code < 500  # a client's mistake, never a 5xx
    qtbot.waitUntil(lambda: tab.log.log.rowCount() == 5, timeout=WORKER_TIMEOUT_MS)
    rows = tab.log.log.records
    assert [r.status for r in rows] == [200, 200, 200, 200, bad.status_code]
    assert {_cell(tab, 0, "Model"), _cell(tab, 0, "Path")} == {"iris-mlp:2", "/predict"}
    assert tab.errors == 1 and tab.total == 5
    tab.log.selectRow(0)
    qtbot.waitUntil(lambda: '"probabilities"' in tab.detail.toPlainText(), timeout=10_000)

    # The Python snippet, run as the user would paste it, gets an answer from the server.
    tab.snippets.kind.setCurrentText("Python (httpx)")
    code = tab.snippets.text.toPlainText()
    exec(compile(code, "<snippet>", "exec"), {})
    qtbot.waitUntil(lambda: tab.log.log.rowCount() == 6, timeout=WORKER_TIMEOUT_MS)

    # Promote v1: the running server follows the alias by itself, and says so.
    tab.loaded.select("iris-mlp:1")
    tab.loaded.promote.click()
    qtbot.waitUntil(
        lambda: _tree_aliases(tab) == {"v1": "champion", "v2": ""}, timeout=WORKER_TIMEOUT_MS
    )
    assert _default_version(tab) == "v1"

    assert tab.toggle_action.shortcut().toString() == "Ctrl+Shift+S"
    tab.toggle_action.trigger()
    qtbot.waitUntil(lambda: tab.panel.status.text() == "Stopped", timeout=WORKER_TIMEOUT_MS)
    qtbot.waitUntil(lambda: not window.session.jobs.running_ids(), timeout=WORKER_TIMEOUT_MS)
    assert tab.panel.toggle.text() == "Start server"
    with Project.open(trained) as project:
        (deployment,) = project.serving.list()
        assert deployment.status == "stopped" and deployment.port != 0
        assert project.serving.request_count(deployment.id) == 6
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/v2/health/live", timeout=2)

    # Start again, then quit the window while serving: asked, the server is stopped.
    second = _start(qtbot, tab)
    assert httpx.get(f"{second}/v2/health/ready", timeout=10).status_code == 200
    _quit_answering_cancel_jobs(qtbot, window)
    with Project.open(trained) as project:
        assert [d.status for d in project.serving.list()] == ["stopped", "stopped"]
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{second}/v2/health/live", timeout=2)


def _start(qtbot: QtBot, tab: ServingTab) -> str:
    """Press Start, wait until the server runs, return the address shown."""
    qtbot.mouseClick(tab.panel.toggle, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: tab.panel.status.text().startswith("Running since"), timeout=WORKER_TIMEOUT_MS
    )
    return tab.panel.url.text()


def _quit_answering_cancel_jobs(qtbot: QtBot, window: MainWindow) -> None:
    window.close()
    box = window.findChild(QMessageBox, "questionBox")
    qtbot.waitUntil(lambda: box is not None and box.isVisible(), timeout=10_000)
    next(b for b in box.buttons() if b.text() == "Cancel Jobs").click()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=WORKER_TIMEOUT_MS)


def _cell(tab: ServingTab, row: int, column: str) -> str:
    model = tab.log.log
    return str(model.data(model.index(row, COLUMNS.index(column))))


@pytest.mark.slow
def test_export_served_model_runs_in_a_worker_and_reports(
    qtbot: QtBot, window: MainWindow, trained: Path, open_project: OpenProject, tmp_path: Path
) -> None:
    tab = _open_serving(qtbot, window, trained, open_project)
    dialog = tab.open_export_dialog()
    assert dialog is not None
    assert [dialog.format.itemData(i) for i in range(dialog.format.count())] == [
        "onnx",
        "torchscript",
        "bundle",
        "triton",
    ]
    dialog.format.setCurrentIndex(dialog.format.findData("bundle"))
    assert dialog.model.currentText() == "iris-mlp:2"  # the newest first (nothing served)
    assert dialog.path.text() == str(trained.parent / "iris-mlp-v2.zip")
    out = tmp_path / "served.zip"
    dialog.path.setText(str(out))
    dialog.export_button.click()
    qtbot.waitUntil(lambda: tab.banner.isVisible(), timeout=WORKER_TIMEOUT_MS)
    assert tab.banner.level == "success", tab.banner.text
    assert tab.banner.text == f"Exported iris-mlp:2 to {out}"
    assert out.is_file() and out.stat().st_size > 0

    # The same path again: the worker refuses to overwrite, and the tab says why.
    tab.banner.hide()
    tab.export("iris-mlp:2", "bundle", str(out))
    qtbot.waitUntil(lambda: tab.banner.isVisible(), timeout=WORKER_TIMEOUT_MS)
    assert tab.banner.level == "error"
    assert "failed" in tab.banner.text and "exists" in tab.banner.text


@pytest.mark.slow
def test_a_port_in_use_fails_the_start_with_the_reason(
    qtbot: QtBot, window: MainWindow, trained: Path, open_project: OpenProject
) -> None:
    tab = _open_serving(qtbot, window, trained, open_project)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        tab.panel.port.setValue(port)
        qtbot.mouseClick(tab.panel.toggle, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(
            lambda: tab.panel.status.text().startswith("Failed"), timeout=WORKER_TIMEOUT_MS
        )
    assert str(port) in tab.panel.status.text()
    assert tab.panel.toggle.text() == "Start server" and tab.panel.settings.isEnabled()
    qtbot.waitUntil(lambda: not window.session.jobs.running_ids(), timeout=WORKER_TIMEOUT_MS)
    qtbot.waitUntil(tab.panel.toggle.isEnabled, timeout=10_000)
    with Project.open(trained) as project:
        (deployment,) = project.serving.list()
        assert deployment.status == "failed" and str(port) in (deployment.error or "")
        assert project.integrity_ok()
