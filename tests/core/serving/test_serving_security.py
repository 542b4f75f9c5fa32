"""Tokens, addresses, body and time limits (the fuzzer is tests/faults/test_server_fuzz.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lepton_desktop.core.errors import InvalidOptionError
from lepton_desktop.core.project import Project
from lepton_desktop.core.serving.runner import ServerRunner, ServeSpec
from tests.helpers import snapshot
from tests.serving_factory import copy_project, rows, running, serving_project

__all__ = ["serving_project"]
TOKEN = "s3cret-token-of-24-chars"


@pytest.fixture(scope="module")
def project(serving_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(serving_project, tmp_path_factory.mktemp("security"))


@pytest.fixture(scope="module")
def guarded(project: Path) -> Iterator[Any]:
    with running(project, token=TOKEN, max_body_bytes=64 * 1024) as runner:
        yield runner


def test_token_required_except_health(guarded: Any) -> None:
    record = {"model": "iris", "records": rows()[:1]}
    with httpx.Client(base_url=guarded.url) as client:
        for path in ("/v2/health/live", "/v2/health/ready", "/ping", "/health"):
            assert client.get(path).status_code == 200, path
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            answer = client.post("/predict", json=record, headers=headers)
            assert answer.status_code == 401 and answer.json()["error"]
            assert answer.headers["x-request-id"]
        assert client.get("/metrics").status_code == 401
        assert client.get("/openapi.json").status_code == 401
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert client.post("/predict", json=record, headers=good).status_code == 200


def test_body_size_limit_declared_and_streamed(guarded: Any) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    big = b'{"records": [' + b'{"a": 1},' * 20_000 + b'{"a": 1}]}'
    with httpx.Client(base_url=guarded.url) as client:
        answer = client.post("/predict", content=big, headers=auth)
        assert answer.status_code == 413 and "larger" in answer.json()["error"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: the size is counted as read
            for _ in range(100):
                yield b" " * 1024

        answer = client.post("/predict", content=chunks(), headers=auth)
        assert answer.status_code == 413
        ok = client.post("/predict", json={"model": "iris", "records": rows()[:1]}, headers=auth)
        assert ok.status_code == 200


def test_request_time_limit(project: Path) -> None:
    with running(project, log=False, timeout_s=1e-6) as runner, httpx.Client() as client:
        answer = client.post(runner.url + "/predict", json={"model": "iris", "records": rows()})
        assert answer.status_code == 504 and "no answer within" in answer.json()["error"]
        assert client.get(runner.url + "/v2/health/live").status_code == 200


def test_other_address_needs_a_token(project: Path) -> None:
    before = snapshot(project)
    with pytest.raises(InvalidOptionError, match="needs a token"):
        ServerRunner(ServeSpec(project=str(project), host="0.0.0.0", port=0)).start()
    with Project.open(project) as opened, pytest.raises(InvalidOptionError, match="--token"):
        opened.serving.queue(host="0.0.0.0", port=0)
    assert snapshot(project) == before
