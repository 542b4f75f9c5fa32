"""`lepton-desktop serve` in a subprocess: a project, a bundle with workers, refusals."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import socket
import subprocess
import sys
import zipfile
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


def _serve_done(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lepton_desktop", "serve", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def test_serve_on_a_port_in_use_records_nothing(project: Path, cli_env: dict[str, str]) -> None:
    before = snapshot(project)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _one_error_line(_serve_done([str(project), "--port", str(port)], cli_env))
    assert line.startswith(f"error: cannot listen on 127.0.0.1:{port}: "), line
    assert snapshot(project) == before  # no failed deployment, no failed job


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--max-body-mb", "nan"),
        ("--max-body-mb", "inf"),
        ("--max-body-mb", "-1"),
        ("--timeout", "nan"),
        ("--max-wait-ms", "-inf"),
        ("--header-timeout", "0"),
        ("--body-timeout", "NaN"),
        ("--max-connections", "0"),
        ("--workers", "1.5"),
        ("--port", "70000"),
    ],
)
def test_serve_refuses_impossible_numbers(
    project: Path, cli_env: dict[str, str], option: str, value: str
) -> None:
    before = snapshot(project)
    line = _one_error_line(_serve_done([str(project), f"{option}={value}"], cli_env))
    assert line.startswith(f"error: serve: argument {option}: '{value}'"), line
    assert snapshot(project) == before


def test_serve_refuses_a_bundle_with_an_unknown_step(
    project: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    bundle = tmp_path / "iris.zip"
    with Project.open(project) as opened:
        opened.export("iris:1", "bundle", bundle)
    with zipfile.ZipFile(bundle) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    document = json.loads(entries["models/0/model.json"])
    document["pipeline"].insert(1, {"step": "quantile_clip", "columns": ["sepal_length"]})
    entries["models/0/model.json"] = json.dumps(document).encode()
    manifest = json.loads(entries["manifest.json"])
    for name, data in entries.items():  # a consistent bundle: only the step is unknown
        if name != "manifest.json":
            manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(),
                                       "bytes": len(data)}  # fmt: skip
    entries["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(bundle, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    line = _one_error_line(_serve_done([str(bundle), "--port", "0"], cli_env))
    assert "preprocessing step 1 is 'quantile_clip'" in line, line
    assert "does not know" in line
