"""Deployments and the request log in the project file (no server needed)."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from lepton_desktop.core.errors import InvalidOptionError, LeptonError, NotFoundError
from lepton_desktop.core.project import Project
from lepton_desktop.core.store import serving as serving_store
from tests.helpers import snapshot
from tests.serving_factory import copy_project, serving_project

__all__ = ["serving_project"]


@pytest.fixture
def project(serving_project: Path, tmp_path: Path) -> Iterator[Project]:
    with Project.open(copy_project(serving_project, tmp_path)) as opened:
        yield opened


def test_queue_records_a_deployment_and_its_serve_job(project: Project) -> None:
    deployment, job_id = project.serving.queue(["iris"], port=0, max_batch=8)
    assert deployment.status == "queued" and deployment.active
    assert deployment.job_id == job_id and project.job(job_id).kind == "serve"
    assert deployment.options["max_batch"] == 8 and deployment.options["capture_inputs"]
    assert project.serving.active() == deployment


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"host": "0.0.0.0"}, "needs a token"),
        ({"host": "192.168.1.5", "token": "short"}, "at least 16"),
        ({"port": 70000}, "between 1 and 65535"),
        ({"max_batch": 0}, "--max-batch 0"),
        ({"colour": "red"}, "unknown server options: colour"),
        ({"max_wait_ms": "soon"}, "--max-wait-ms 'soon': give a number"),
        ({"timeout_s": -1}, "--timeout -1: give a number"),
        ({"timeout_s": float("nan")}, "--timeout nan: give a number"),
        ({"header_timeout_s": 0}, "--header-timeout 0: give a number from above 0"),
        ({"body_timeout_s": float("inf")}, "--body-timeout inf: give a number"),
        ({"max_connections": 0}, "--max-connections 0: give a whole number from 1"),
        ({"max_body_bytes": 1 << 40}, "--max-body-bytes 1099511627776: give a whole number"),
        ({"workers": 1000}, "--workers 1000: give a whole number from 1 to 64"),
    ],
)
def test_bad_options_are_refused_and_nothing_written(
    project: Project, kwargs: dict[str, object], message: str
) -> None:
    before = snapshot(project.path)
    with pytest.raises(InvalidOptionError, match=message):
        project.serving.queue(**kwargs)  # type: ignore[arg-type]
    assert snapshot(project.path) == before


def test_a_port_in_use_is_refused_before_anything_is_written(project: Project) -> None:
    before = snapshot(project.path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(LeptonError, match=f"cannot listen on 127.0.0.1:{port}: "):
            project.serving.queue(port=port, check_port=True)
    assert snapshot(project.path) == before


def test_unknown_model_is_refused(project: Project) -> None:
    before = snapshot(project.path)
    with pytest.raises(NotFoundError, match="nope"):
        project.serving.queue(["nope"])
    assert snapshot(project.path) == before


def test_token_allows_other_addresses(project: Project) -> None:
    token = project.serving.new_token()
    deployment, _ = project.serving.queue(host="0.0.0.0", token=token)
    assert deployment.models == []
    # Only the token's digest is stored: nothing in the file opens the server.
    assert deployment.token == "sha256:" + hashlib.sha256(token.encode()).hexdigest()
    project.close()
    raw = project.path.read_bytes() + _wal_bytes(project.path)
    assert token.encode() not in raw


def _wal_bytes(path: Path) -> bytes:
    wal = path.with_name(path.name + "-wal")
    return wal.read_bytes() if wal.exists() else b""


def test_an_older_file_keeps_digests_instead_of_tokens(tmp_path: Path) -> None:
    from lepton_desktop.core.store import migrations
    from lepton_desktop.core.store.db import connect

    path = tmp_path / "old.lepton"
    conn = connect(path)
    migrations.initialize(conn, migrations.MIGRATIONS[:9])
    conn.execute("INSERT INTO deployments (host, port, token, created_at) "
                 "VALUES ('0.0.0.0', 8765, 'a-clear-token-of-old', 0)")  # fmt: skip
    conn.close()
    with Project.open(path, upgrade=True) as opened:
        (deployment,) = opened.serving.list()
    digest = "sha256:" + hashlib.sha256(b"a-clear-token-of-old").hexdigest()
    assert deployment.token == digest


def test_request_log_is_read_incrementally(project: Project) -> None:
    deployment = project.serving.create(["iris"])
    rows = [
        {
            "deployment_id": deployment.id,
            "ts": float(i),
            "request_id": f"r{i}",
            "method": "POST",
            "path": "/predict",
            "protocol": "predict",
            "model": "iris",
            "version": 1,
            "status": 200,
            "latency_ms": 1.5,
            "n_rows": 1,
            "inputs": [{"sepal_length": 5.1}],
            "outputs": [{"label": "setosa"}],
        }
        for i in range(5)
    ]
    assert serving_store.add_requests(project.conn, rows) == 5
    first = project.serving.requests_since(deployment.id, 0, limit=3)
    rest = project.serving.requests_since(deployment.id, first[-1].id)
    assert [r.request_id for r in first + rest] == [f"r{i}" for i in range(5)]
    assert rest[0].inputs == [{"sepal_length": 5.1}]
    assert project.serving.request_count(deployment.id) == 5
    project.serving.add_feedback("r3", "setosa", deployment_id=deployment.id)
    assert project.serving.feedback_for("r3") == [(0, "setosa")]
    labels = [("r1", "setosa", 0), ("r1", "virginica", 1)]
    assert serving_store.add_feedbacks(project.conn, deployment.id, labels) == 2
    assert project.serving.feedback_for("r1") == [(0, "setosa"), (1, "virginica")]
    assert project.serving.find_request("r4") is not None


def test_a_deployment_whose_worker_died_is_interrupted(project: Project) -> None:
    deployment, job_id = project.serving.queue()
    project.cancel_job(job_id)  # a queued job is cancelled at once
    assert project.serving.get(deployment.id).status == "interrupted"
