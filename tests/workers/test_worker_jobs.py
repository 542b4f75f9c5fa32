"""Real worker subprocesses: progress, heartbeats, cancel, SIGKILL and stale jobs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lepton_desktop.core.project import Project
from lepton_desktop.core.system.launch import worker_argv
from tests.helpers import snapshot, write_csv

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 60 MB: long enough to catch a worker in the middle of its import."""
    rng = np.random.default_rng(0)
    n = 800_000
    frame = pd.DataFrame(rng.normal(size=(n, 8)), columns=[f"f{i}" for i in range(8)])
    frame["label"] = rng.integers(0, 3, n)
    path = tmp_path_factory.mktemp("big") / "big.csv"
    frame.to_csv(path, index=False, float_format="%.6f")
    return path


def _start_worker(project: Path, job_id: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        worker_argv("import", project, job_id),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _queue_import(path: Path, source: Path, name: str = "big") -> int:
    with Project.open(path) as project:
        return project.create_job("import", {"source": str(source), "name": name})


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _job(path: Path, job_id: int):
    with Project.open(path) as project:
        return project.job(job_id)


def test_a_worker_process_imports_and_reports(tmp_project: Path, tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "small.csv", ["a", "b"], [[1, "x"], [2, "y"]])
    job_id = _queue_import(tmp_project, csv, "small")
    proc = _start_worker(tmp_project, job_id)
    assert proc.wait(timeout=60) == 0, proc.stderr.read().decode() if proc.stderr else ""
    job = _job(tmp_project, job_id)
    assert job.status == "succeeded" and job.result is not None
    assert job.result["dataset"] == "small:1" and job.result["rows"] == 2
    assert job.pid == proc.pid and job.finished_at is not None


def test_progress_and_heartbeats_while_running_then_cancel(
    tmp_project: Path, big_csv: Path
) -> None:
    job_id = _queue_import(tmp_project, big_csv)
    before = snapshot(tmp_project)
    proc = _start_worker(tmp_project, job_id)
    _wait_for(lambda: _job(tmp_project, job_id).progress_done > 0)
    running = _job(tmp_project, job_id)
    assert running.status == "running" and running.progress_total == big_csv.stat().st_size
    assert running.heartbeat_at is not None
    with Project.open(tmp_project) as project:
        project.cancel_job(job_id)
    assert proc.wait(timeout=60) == 1
    job = _job(tmp_project, job_id)
    assert job.status == "cancelled"
    after = snapshot(tmp_project)
    assert after["tables"] == before["tables"] and after["versions"] == before["versions"] == []
    assert after["integrity"] == "ok"


def test_a_killed_worker_leaves_its_job_interrupted_and_no_partial_data(
    tmp_project: Path, big_csv: Path
) -> None:
    job_id = _queue_import(tmp_project, big_csv)
    proc = _start_worker(tmp_project, job_id)
    _wait_for(lambda: _job(tmp_project, job_id).progress_done > 0)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    with Project.open(tmp_project) as project:  # opening detects the dead worker
        job = project.job(job_id)
        assert job.status == "interrupted" and "stopped unexpectedly" in (job.error or "")
        assert project.datasets() == []
        assert project.integrity_ok()
    assert not [t for t in snapshot(tmp_project)["tables"] if t.startswith("ds_")]


def test_sigterm_cancels_cleanly(tmp_project: Path, big_csv: Path) -> None:
    job_id = _queue_import(tmp_project, big_csv)
    proc = _start_worker(tmp_project, job_id)
    _wait_for(lambda: _job(tmp_project, job_id).progress_done > 0)
    proc.terminate()
    proc.wait(timeout=60)
    assert _job(tmp_project, job_id).status == "cancelled"
    assert snapshot(tmp_project)["versions"] == []


def test_a_hung_worker_is_marked_stale_by_its_old_heartbeat(tmp_project: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with Project.open(tmp_project) as project:
            job_id = project.create_job("import", {})
            project.conn.execute(
                "UPDATE jobs SET status = 'running', pid = ?, heartbeat_at = ? WHERE id = ?",
                (sleeper.pid, time.time() - 100, job_id),
            )
            assert project.recover_stale_jobs(stale_after=1000) == []  # alive, recent enough
            assert project.recover_stale_jobs(stale_after=30) == [job_id]
            assert project.job(job_id).status == "interrupted"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_live_worker_is_left_alone_by_another_opener(tmp_project: Path, big_csv: Path) -> None:
    job_id = _queue_import(tmp_project, big_csv)
    proc = _start_worker(tmp_project, job_id)
    _wait_for(lambda: _job(tmp_project, job_id).progress_done > 0)
    assert _job(tmp_project, job_id).status == "running"  # Project.open ran recovery
    with Project.open(tmp_project) as project:
        project.cancel_job(job_id)
    proc.wait(timeout=60)
