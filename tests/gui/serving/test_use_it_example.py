"""The "Use it" example sends raw values, the ones the server's preprocessing expects.

A model trained on a *scaled* version of diabetes: the example the tab shows is taken
as the user would copy it (the widget's text, parsed), sent to a real server, and its
answer must be what ``Project.predict`` gives for the same patient's raw row.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytestqt.qtbot import QtBot

from lepton_desktop.core.datasets.prep import PrepOptions
from lepton_desktop.core.project import Project
from lepton_desktop.gui.serving.poller import ServingPoller
from lepton_desktop.gui.serving.tab import ServingTab
from lepton_desktop.gui.session import ProjectSession
from tests.conftest import SAMPLE_DATA
from tests.serving_factory import running

pytestmark = pytest.mark.gui
MODEL = "diabetes-mlp"


@pytest.fixture(scope="module")
def _scaled_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """diabetes:1 as imported, diabetes:2 standard-scaled, a model trained on :2."""
    path = tmp_path_factory.mktemp("scaled") / "scaled.lepton"
    with Project.create(path) as project:
        project.import_dataset(SAMPLE_DATA / "diabetes.csv", "diabetes", target="progression")
        options = PrepOptions(fill="mean", scale="standard", split=(0.7, 0.15, 0.15), seed=0)
        project.prep("diabetes", options)
        project.train("diabetes:2", arch="mlp", epochs=2, seed=0, model_name=MODEL)
    return path


def _curl_example(text: str) -> tuple[str, dict[str, Any]]:
    """The URL and the JSON body of the curl example, as a shell would read them."""
    words = shlex.split(text.replace("\\\n", " "))
    url = next(w for w in words if w.startswith("http"))
    return url, json.loads(words[words.index("-d") + 1])


@pytest.mark.slow  # a real server: its own processes
def test_the_example_carries_raw_values_and_the_server_agrees_with_predict(
    qtbot: QtBot,
    _scaled_model: Path,
    tmp_path: Path,
    open_session: Callable[[Path], ProjectSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ServingPoller, "INTERVAL_MS", 100)
    path = tmp_path / "scaled.lepton"
    path.write_bytes(_scaled_model.read_bytes())
    with Project.open(path) as project:
        version = project.models.get(MODEL)
        assert project.dataset_by_id(version.dataset_version_id).ref == "diabetes:2"
        raw = project.dataset("diabetes:1")
        names = [c.name for c in raw.columns]
        raw_row = dict(zip(names, project.rows(raw, 0, 1)[0], strict=False))
        raw_row.pop("progression")

    with running(path, models=[MODEL]) as server:
        with Project.open(path) as project:  # what the serve worker records once it listens
            project.serving.update(
                server.spec.deployment_id, status="running", url=server.url,
                started_at=time.time(),
            )  # fmt: skip
        tab = ServingTab()
        qtbot.addWidget(tab)
        tab.show()
        tab.set_session(open_session(path))
        qtbot.waitUntil(lambda: f"{server.url}/predict" in tab.snippets.text.toPlainText(),
                        timeout=20_000)  # fmt: skip
        url, body = _curl_example(tab.snippets.text.toPlainText())
        assert body["model"] == MODEL
        with httpx.Client(timeout=30) as client:
            answer = client.post(url, json=body)
        assert answer.status_code == 200, answer.text

    with Project.open(path) as project:
        expected = project.predict(MODEL, [raw_row])
    (got,) = answer.json()["predictions"]
    assert got["value"] == pytest.approx(expected[0]["value"], rel=1e-5, abs=1e-4)
    # The example is the patient's own row, not the scaled one the model was fitted on.
    assert body["records"] == [raw_row]
