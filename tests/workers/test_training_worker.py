"""Training in a real worker process: pause, resume, stop, SIGKILL and --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lepton_desktop.core.project import Project
from lepton_desktop.core.system.launch import worker_argv
from lepton_desktop.core.training.config import TrainConfig

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "resources" / "sample_data"


@pytest.fixture
def iris_project(tmp_project: Path) -> Path:
    with Project.open(tmp_project) as project:
        project.import_dataset(SAMPLES / "iris.csv", "iris", target="species")
    return tmp_project


def _queue(path: Path, **options) -> tuple[int, int]:
    config = TrainConfig.from_dict({"arch": "mlp", "patience": 0, "schedule": "none", **options})
    with Project.open(path) as project:
        run, job_id = project.runs.queue("iris", config)
    return run.id, job_id


def _worker(path: Path, job_id: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        worker_argv("train", path, job_id), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _run(path: Path, run_id: int):
    with Project.open(path) as project:
        return project.runs.get(run_id)


def _wait_for(predicate, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _control(path: Path, action: str, run_id: int) -> None:
    with Project.open(path) as project:
        getattr(project.runs, action)(run_id)


def test_pause_resume_then_stop_still_registers_the_best_model(iris_project: Path) -> None:
    run_id, job_id = _queue(iris_project, epochs=2000)
    proc = _worker(iris_project, job_id)
    _wait_for(lambda: _run(iris_project, run_id).epochs_done >= 2)
    _control(iris_project, "pause", run_id)
    _wait_for(lambda: _run(iris_project, run_id).status == "paused")
    paused_at = _run(iris_project, run_id).epochs_done
    time.sleep(1.0)  # a paused worker makes no progress
    assert _run(iris_project, run_id).epochs_done <= paused_at + 1
    _control(iris_project, "resume", run_id)
    _wait_for(lambda: _run(iris_project, run_id).epochs_done >= paused_at + 3)
    _control(iris_project, "stop", run_id)
    assert proc.wait(timeout=60) == 0, proc.stderr.read().decode() if proc.stderr else ""
    run = _run(iris_project, run_id)
    assert run.status == "stopped" and run.epochs_done < 2000
    with Project.open(iris_project) as project:
        assert project.models.get("iris-mlp").run_id == run_id


def test_a_killed_run_is_interrupted_and_resumes_from_its_checkpoint(iris_project: Path) -> None:
    run_id, job_id = _queue(iris_project, epochs=60)
    proc = _worker(iris_project, job_id)
    _wait_for(lambda: _run(iris_project, run_id).epochs_done >= 5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    run = _run(iris_project, run_id)  # opening the project notices the dead worker
    assert run.status == "interrupted" and run.resumable
    killed_at = run.epochs_done
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "lepton_desktop",
            "train",
            str(iris_project),
            "--resume",
            str(run_id),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["run_id"] == run_id and result["epochs"] == 60
    with Project.open(iris_project) as project:
        epochs = [m.epoch for m in project.runs.metrics(run_id) if m.name == "val_loss"]
    assert epochs[-1] == 60 and min(epochs) == 1
    assert killed_at >= 5
