"""Tuning in real worker processes: --jobs 2, a trial worker killed, stop and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import psutil
import pytest

from lepton_desktop.core.jobs import run_job
from lepton_desktop.core.project import Project
from lepton_desktop.core.system.launch import worker_argv
from lepton_desktop.workers.tuning import tune_job

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "resources" / "sample_data"


@pytest.fixture
def iris_project(tmp_project: Path) -> Path:
    with Project.open(tmp_project) as project:
        project.import_dataset(SAMPLES / "iris.csv", "iris", target="species")
    return tmp_project


def _start(path: Path, n_trials: int, epochs: int) -> tuple[str, subprocess.Popen[bytes]]:
    with Project.open(path) as project:
        study = project.tuning.create(
            "iris", "mlp", n_trials=n_trials, jobs=2, epochs=epochs, pruner="none"
        )
        job_id = project.tuning.queue(study.name)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen(
        worker_argv("tune", path, job_id), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    return study.name, process


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _trial_worker(path: Path):
    with Project.open(path) as project:
        return next((j for j in project.jobs() if j.kind == "trial"), None)


def _counts(path: Path, name: str) -> dict[str, int]:
    with Project.open(path) as project:
        return project.tuning.trial_counts(name)


def _optuna(path: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{path}?timeout=30")


def _finished(path: Path, name: str) -> int:
    counts = _counts(path, name)
    return counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)


def test_a_killed_trial_worker_is_failed_by_the_heartbeat_and_the_study_goes_on(
    iris_project: Path,
) -> None:
    # Enough trials that the first process is still busy when the second has imported
    # torch, even on a loaded machine (with 4, the first could finish the budget alone).
    name, process = _start(iris_project, n_trials=8, epochs=30)
    # Two trials running: each process is in the middle of one. Kill the second process.
    _wait_for(lambda: _counts(iris_project, name).get("RUNNING", 0) == 2)
    victim = _trial_worker(iris_project)
    assert victim is not None and victim.pid is not None
    os.kill(victim.pid, signal.SIGKILL)
    assert process.wait(timeout=90) == 0, process.stderr.read().decode() if process.stderr else ""
    study = _optuna(iris_project, name)
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 8
    assert states.count(optuna.trial.TrialState.FAIL) == 1  # the killed one, by heartbeat
    (failed,) = [t.number for t in study.trials if t.state.name == "FAIL"]
    assert any(t.system_attrs.get("failed_trial") == failed for t in study.trials)  # retried
    with Project.open(iris_project) as project:
        assert project.tuning.get(name).status == "finished"
        assert project.job(victim.id).status == "interrupted"
        assert project.integrity_ok()


def test_stop_ends_every_process_cleanly_and_the_study_resumes(iris_project: Path) -> None:
    name, process = _start(iris_project, n_trials=60, epochs=8)
    _wait_for(lambda: _finished(iris_project, name) >= 1 and _trial_worker(iris_project))
    worker = _trial_worker(iris_project)
    with Project.open(iris_project) as project:
        project.tuning.stop(name)
    assert process.wait(timeout=30) == 1  # the job ended cancelled
    assert worker is not None and worker.pid is not None
    _wait_for(lambda: not psutil.pid_exists(worker.pid) or _zombie(worker.pid), 15)
    done = _finished(iris_project, name)
    with Project.open(iris_project) as project:
        assert project.tuning.get(name).status == "stopped"
        assert project.job(worker.id).status == "cancelled"
        job_id = project.tuning.queue(name, 2, jobs=1)
    assert not any(t.state.name == "RUNNING" for t in _optuna(iris_project, name).trials)
    job = run_job(iris_project, job_id, tune_job)
    assert job.status == "succeeded", job.error
    assert job.result["n_trials"] == done + 2 and job.result["model"]


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True
