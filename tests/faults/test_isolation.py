"""Issue 10, defect 1: no worker runs code that sits in the folder it was started from.

Modules named like what the workers import (``concurrent``, ``json``, ``torch``,
``lepton_desktop`` itself, ...) are planted where a careless start would find them:
the folder a user runs the command line from, and the folder the workers run in. Each
planted module writes a marker file when imported. Every kind of work runs for real
(datasets import, prep, train, tune with ``--jobs 2``, serve with two server
processes, export), once through the command line and once as the GUI starts its
worker processes; no marker may appear, and the work must succeed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from lepton_desktop.core.project import Project
from lepton_desktop.core.system.launch import worker_argv, worker_cwd, worker_env
from lepton_desktop.core.training.config import TrainConfig
from lepton_desktop.paths import worker_dir
from tests.faults.harness import CLI
from tests.faults.scenarios import BIG_ROWS

pytestmark = pytest.mark.slow

#: Modules the workers import after start-up (standard library, dependencies, ours).
PLANTED = (
    "concurrent",
    "json",
    "csv",
    "uuid",
    "decimal",
    "sqlite3",
    "zipfile",
    "secrets",
    "multiprocessing",
    "numpy",
    "pandas",
    "sklearn",
    "scipy",
    "pyarrow",
    "torch",
    "optuna",
    "uvicorn",
    "psutil",
    "lepton_desktop",
)
IRIS = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def plant(folder: Path, markers: Path) -> None:
    """Put a module for each name of PLANTED into ``folder``; each marks its import."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in PLANTED:
        code = f"open({str(markers / name)!r}, 'w').write('imported from {folder}')\n"
        if name == "lepton_desktop":  # a package, as the real one is
            (folder / name).mkdir(exist_ok=True)
            (folder / name / "__init__.py").write_text(code)
            (folder / name / "__main__.py").write_text(code)
        else:
            (folder / f"{name}.py").write_text(code)


@pytest.fixture
def markers(tmp_path: Path) -> Path:
    folder = tmp_path / "markers"
    folder.mkdir()
    return folder


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, markers: Path) -> dict[str, str]:
    """A private data folder (so the workers' folder is this test's) with modules planted."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    plant(worker_dir(), markers)
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the installed package, found as a user's would be
    return env


def _cli(argv: list[str], folder: Path, env: dict[str, str]) -> dict:
    done = subprocess.run(
        [str(CLI), *argv, "--json"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _serve_and_stop(argv: list[str], folder: Path, env: dict[str, str]) -> None:
    server = subprocess.Popen(
        argv, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        found = re.search(r"http://127\.0\.0\.1:\d+", server.stdout.readline())
        assert found, server.stderr.read() if server.stderr else ""
        answer = httpx.post(f"{found.group(0)}/predict", json={"records": [IRIS]}, timeout=60)
        assert answer.status_code == 200, answer.text
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def test_the_command_line_run_from_a_planted_folder_runs_none_of_it(
    isolated_env: dict[str, str], markers: Path, tmp_path: Path
) -> None:
    here = tmp_path / "here"
    plant(here, markers)
    project = here / "p.lepton"
    iris = Path(__file__).resolve().parents[2] / "resources" / "sample_data" / "iris.csv"
    env = isolated_env
    subprocess.run([str(CLI), "new", str(project)], cwd=here, env=env, check=True)
    _cli(["import", str(project), str(iris), "--name", "iris", "--target", "species"], here, env)
    _cli(
        ["prep", str(project), "iris", "--scale", "standard", "--split", "0.7,0.15,0.15"],
        here,
        env,
    )
    _cli(["train", str(project), "iris:2", "--arch", "mlp", "--epochs", "2"], here, env)
    tuned = _cli(
        [
            "tune",
            str(project),
            "iris:2",
            "--arch",
            "mlp",
            "--trials",
            "4",
            "--jobs",
            "2",
            "--epochs",
            "2",
            "--pruner",
            "none",
        ],
        here,
        env,
    )
    assert tuned["status"] == "finished"
    _cli(
        ["export", str(project), "iris-mlp", "--format", "bundle", "--out", str(here / "m.zip")],
        here,
        env,
    )
    _serve_and_stop(
        [str(CLI), "serve", str(project), "--port", "0", "--model", "iris-mlp", "--workers", "2"],
        here,
        env,
    )
    assert _imported(markers) == []


def _imported(markers: Path) -> list[str]:
    return sorted(p.name for p in markers.iterdir())


def _run_worker(kind: str, project: Path, job_id: int, markers: Path) -> None:
    """Start the job's worker exactly as the GUI does (``gui.jobs.JobRunner.start``)."""
    done = subprocess.run(
        worker_argv(kind, project, job_id),
        cwd=worker_cwd(),
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert _imported(markers) == [], f"the {kind} worker ran planted modules"
    assert done.returncode == 0, done.stderr[-3000:]
    with Project.open(project) as opened:
        assert opened.job(job_id).status == "succeeded", opened.job(job_id).error


def _serve_worker(project: Path) -> None:
    with Project.open(project) as opened:
        deployment, job_id = opened.serving.queue(["iris-mlp"], port=0, workers=2)
    worker = subprocess.Popen(
        worker_argv("serve", project, job_id),
        cwd=worker_cwd(),
        env=worker_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while True:
        with Project.open(project) as opened:
            url = opened.serving.get(deployment.id).url
        if url or worker.poll() is not None or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    try:
        assert url, "the server never started"
        answer = httpx.post(f"{url}/predict", json={"records": [IRIS]}, timeout=60)
        assert answer.status_code == 200, answer.text
    finally:
        with Project.open(project) as opened:
            opened.cancel_job(job_id)
        assert worker.wait(timeout=60) == 0


def test_workers_started_as_the_gui_starts_them_run_none_of_it(
    fault_template: Path,
    fault_data: Path,
    isolated_env: dict[str, str],
    markers: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    here = tmp_path / "gui-folder"
    plant(here, markers)
    monkeypatch.chdir(here)  # the folder the GUI was started from
    project = tmp_path / "p.lepton"
    shutil.copy(fault_template, project)
    jobs = {
        "import": {"source": str(fault_data / "big.csv"), "name": "more", "target": "label"},
        "prep": {"dataset": "iris:1", "options": {"scale": "minmax"}},
        "train": None,
        "export": {"model": "iris-mlp", "format": "bundle", "out": str(tmp_path / "m.zip")},
        "tune": None,
    }
    with Project.open(project) as opened:
        _, jobs["train"] = opened.runs.queue(
            "iris:2", TrainConfig.from_dict({"arch": "mlp", "epochs": 2})
        )
        study = opened.tuning.create("iris:2", "mlp", n_trials=4, jobs=2, epochs=2, pruner="none")
        jobs["tune"] = opened.tuning.queue(study.name)
        ids = {k: v if isinstance(v, int) else opened.create_job(k, v) for k, v in jobs.items()}
    for kind, job_id in ids.items():
        _run_worker(kind, project, job_id, markers)
    _serve_worker(project)
    with Project.open(project) as opened:
        assert opened.dataset("more").n_rows == BIG_ROWS
        assert opened.tuning.get(study.name).status == "finished"
    assert _imported(markers) == []
