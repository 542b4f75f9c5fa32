"""`lepton-desktop serve` in a subprocess: a project, a bundle with workers, refusals."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lepton_desktop.core.project import Project
from tests.helpers import snapshot
from tests.serving_factory import copy_project, rows, serving_project

__all__ = ["serving_project"]
pytestmark = pytest.mark.slow


def _serve(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """Start ``serve`` and return the process and the URL it prints."""
    process = subprocess.Popen(
        [sys.executable, "-m", "lepton_desktop", "serve", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()  # blocks until the server listens (or exits)
    match = re.search(r"http://127\.0\.0\.1:\d+", line)
    if match is None:
        process.kill()
        pytest.fail(f"no address printed: {line!r} {process.communicate()[1]}")
    return process, match.group(0)


@pytest.fixture
def project(serving_project: Path, tmp_path: Path) -> Iterator[Path]:
    yield copy_project(serving_project, tmp_path)


def test_serve_a_project_until_sigterm(project: Path, cli_env: dict[str, str]) -> None:
    process, url = _serve([str(project), "--port", "0", "--model", "iris:2"], cli_env)
    try:
        answer = httpx.post(url + "/predict", json=rows()[:3], timeout=30)
        assert answer.status_code == 200 and answer.json()["model"] == "iris:2"
        assert httpx.get(url + "/v2/models/diabetes").status_code == 404  # not asked for
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, process.communicate()[1]
    with Project.open(project) as opened:
        (deployment,) = opened.serving.list()
        assert deployment.status == "stopped" and deployment.url == url
        assert opened.serving.request_count(deployment.id) == 2


def test_serve_refuses_other_addresses_without_a_token(
    project: Path, cli_env: dict[str, str]
) -> None:
    before = snapshot(project)
    done = subprocess.run(
        [sys.executable, "-m", "lepton_desktop", "serve", str(project), "--host", "0.0.0.0"],
        env=cli_env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: --host 0.0.0.0: serving beyond this machine")
    assert len(done.stderr.strip().splitlines()) == 1
    assert snapshot(project) == before
    done = subprocess.run(
        [sys.executable, "-m", "lepton_desktop", "serve", str(project), "--model", "nope"],
        env=cli_env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "nope" in done.stderr
    assert snapshot(project) == before


def test_serve_a_bundle_with_two_worker_processes(
    project: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:

    bundle = tmp_path / "iris.zip"
    with Project.open(project) as opened:
        opened.export("iris:1", "bundle", bundle)
    log = tmp_path / "log.lepton"
    process, url = _serve(
        [str(bundle), "--port", "0", "--workers", "2", "--log", str(log)], cli_env
    )
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            for _ in range(20):
                answer = client.post("/predict", json=rows()[:1])
                assert answer.status_code == 200 and answer.json()["model"] == "iris:1"
            metrics = client.get("/metrics").text
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, process.communicate()[1]
    # Both processes' counts add up in /metrics (Prometheus multi-process mode).
    assert re.search(r'lepton_requests_total\{.*model="iris".*\} 20\.0', metrics), metrics
    with Project.open(log) as opened:
        (deployment,) = opened.serving.list()
        assert deployment.status == "stopped"
        logged = opened.serving.requests_since(deployment.id)
    paths = [r.path for r in logged]  # both processes' rows, none lost on SIGTERM
    assert paths.count("/predict") == 20 and paths.count("/metrics") == 1
    assert len(paths) == 21  # no readiness probe: a server says itself that it listens
