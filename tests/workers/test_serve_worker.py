"""The ``serve`` worker as the GUI starts it: a real subprocess, stopped by cancelling its job."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from lepton_desktop.core.project import Project
from lepton_desktop.core.system.launch import worker_argv
from tests.serving_factory import copy_project, rows, serving_project

__all__ = ["serving_project"]
pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def _start(project: Path, job_id: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        worker_argv("serve", project, job_id),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait_status(project: Path, deployment_id: int, wanted: set[str], timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        with Project.open(project) as opened:
            deployment = opened.serving.get(deployment_id)
        if deployment.status in wanted:
            return deployment
        assert time.monotonic() < deadline, f"still {deployment.status}"
        time.sleep(0.1)


def test_worker_serves_until_its_job_is_cancelled(serving_project: Path, tmp_path: Path) -> None:
    project = copy_project(serving_project, tmp_path)
    with Project.open(project) as opened:
        deployment, job_id = opened.serving.queue(["iris"], port=0)
    worker = _start(project, job_id)
    try:
        running = _wait_status(project, deployment.id, {"running", "failed"})
        assert running.status == "running", running.error
        assert running.port > 0 and running.url == f"http://127.0.0.1:{running.port}"
        assert {(m["name"], m["version"]) for m in running.loaded} == {("iris", 1), ("iris", 2)}
        answer = httpx.post(running.url + "/predict", json=rows()[:2], timeout=30)
        assert answer.status_code == 200
        with Project.open(project) as opened:  # a promotion shows in the loaded list
            opened.models.set_alias("iris:1", "champion")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with Project.open(project) as opened:
                loaded = opened.serving.get(deployment.id).loaded
            if any(m["aliases"] == ["champion"] and m["version"] == 1 for m in loaded):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"the promotion did not reach the deployment: {loaded}")
        assert httpx.post(running.url + "/predict", json=rows()[:1]).json()["model"] == "iris:1"
        with Project.open(project) as opened:
            opened.serving.stop(deployment.id)
        assert worker.wait(timeout=30) == 0, worker.stderr.read() if worker.stderr else ""
    finally:
        if worker.poll() is None:
            worker.kill()
    with Project.open(project) as opened:
        stopped = opened.serving.get(deployment.id)
        assert stopped.status == "stopped" and stopped.stopped_at
        assert opened.serving.request_count(deployment.id) == 2
        assert opened.job(job_id).status == "succeeded"
        assert opened.integrity_ok()


def test_port_in_use_fails_the_deployment_with_the_reason(
    serving_project: Path, tmp_path: Path
) -> None:
    project = copy_project(serving_project, tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with Project.open(project) as opened:
            deployment, job_id = opened.serving.queue(port=port)
        worker = _start(project, job_id)
        assert worker.wait(timeout=60) == 1
    failed = _wait_status(project, deployment.id, {"failed"}, timeout=5)
    assert f"cannot listen on 127.0.0.1:{port}" in (failed.error or "")
    with Project.open(project) as opened:
        assert opened.job(job_id).status == "failed"
