"""Served inputs lose their personal data before they are logged, unless opted in."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from lepton_desktop.core.project import Project
from tests.helpers import write_csv
from tests.serving_factory import running

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained on rows with an e-mail column (flagged, so not a feature)."""
    folder = tmp_path_factory.mktemp("redaction")
    rows = [[f"user{i}@mail.example", (i * 37) % 100 / 10, (i * 11) % 7, "ab"[i % 2]]
            for i in range(80)]  # fmt: skip
    source = write_csv(folder / "people.csv", ["email", "x1", "x2", "y"], rows)
    path = folder / "p.lepton"
    with Project.create(path) as project:
        version = project.import_dataset(source, "people", target="y")
        assert version.column("email").stats["pii"]["kind"] == "email"
        project.train("people", arch="mlp", epochs=1, model_name="people")
    return path


def _logged_inputs(project: Path, runner: Any, request_id: str) -> Any:
    runner.flush()
    deadline = time.monotonic() + 10
    with Project.open(project) as opened:
        while time.monotonic() < deadline:
            found = opened.serving.find_request(request_id)
            if found is not None:
                return found.inputs
            time.sleep(0.05)
    raise AssertionError(f"request {request_id} was never logged")


def _predict(runner: Any) -> str:
    record = {"email": "alice@private.example", "x1": 1.5, "x2": 3}
    with httpx.Client(base_url=runner.url, timeout=30) as client:
        answer = client.post("/predict", json={"model": "people", "records": [record]})
    assert answer.status_code == 200, answer.text
    return answer.headers["x-request-id"]


def test_flagged_columns_are_redacted_before_they_are_logged(trained: Path) -> None:
    with running(trained) as runner:
        request_id = _predict(runner)
        inputs = _logged_inputs(trained, runner, request_id)
    assert inputs == [{"email": "<redacted email>", "x1": 1.5, "x2": 3}]
    journals = trained.with_name(trained.name + "-requests")
    for leftover in journals.glob("*"):
        assert b"alice@private" not in leftover.read_bytes()
    assert b"alice@private" not in trained.read_bytes()


def test_a_model_opted_in_keeps_them(trained: Path) -> None:
    with Project.open(trained) as project:
        project.capture_pii("people", True)
        assert project.capture_pii_models() == ["people"]
    try:
        with running(trained) as runner:
            request_id = _predict(runner)
            assert _logged_inputs(trained, runner, request_id)[0]["email"] == \
                "alice@private.example"
    finally:
        with Project.open(trained) as project:
            project.capture_pii("people", False)


def test_the_server_option_keeps_them_too(trained: Path) -> None:
    with running(trained, capture_pii=True) as runner:
        request_id = _predict(runner)
        inputs = _logged_inputs(trained, runner, request_id)
    assert inputs[0]["email"] == "alice@private.example"
