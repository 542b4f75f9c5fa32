"""The strong baseline fitted in a child process beside the network (core/training/
strong_baseline.BaselineProcess): the same answers as fitting here, the budget, errors,
a killed child, the pipe's bounds, and no child left behind by a killed ``train``."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from lepton_desktop.core.progress import NullReporter
from lepton_desktop.core.project import Project
from lepton_desktop.core.training import pipe_frames, service
from lepton_desktop.core.training import strong_baseline as strong
from lepton_desktop.core.training.config import TrainConfig
from tests.core.training.test_strong_baseline import SAMPLES, arrays

pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_project: Path):
    with Project.open(tmp_project) as p:
        p.import_dataset(SAMPLES / "iris.csv", "iris", target="species")
        p.import_dataset(SAMPLES / "diabetes.csv", "diabetes", target="progression")
        p.import_dataset(SAMPLES / "digits", "digits")
        yield p


def beside(data, seed: int = 0) -> strong.BaselineProcess:
    process = strong.BaselineProcess()
    process.send(strong.inputs(data, seed))
    return process


def test_the_process_beside_gives_the_answers_of_fitting_here(project: Project) -> None:
    for dataset, arch, network in (
        ("iris", "mlp", {"accuracy": 0.9}),
        ("diabetes", "mlp", {"r2": 0.3}),
        ("digits", "cnn", {"accuracy": 0.9}),  # pixels travel as float32
    ):
        data = arrays(project, dataset, arch=arch, seed=3)
        here = strong.fit_strong_baseline(data, network, seed=3)
        there = strong.fit_strong_baseline(data, network, seed=3, beside=beside(data, 3))
        assert there["name"] == here["name"] and there["skipped"] == here["skipped"] == []
        assert there["metrics"] == here["metrics"], dataset  # the same arrays, the same fits
        assert {n: c["validation"] for n, c in there["candidates"].items()} == pytest.approx(
            {n: c["validation"] for n, c in here["candidates"].items()}, rel=1e-12
        )
        assert there["gain"] == here["gain"]


def test_the_budget_ends_the_process_beside(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(strong, "MIN_BUDGET_SECONDS", 0.0)  # spent by the first fit
    monkeypatch.setattr(strong, "BUDGET_SHARE", 0.0)
    data = arrays(project, "iris", arch="mlp")
    process = beside(data)
    result = strong.fit_strong_baseline(data, {"accuracy": 0.5}, beside=process)
    assert result["name"] == "LogisticRegression" and result["selected_on"] is None
    assert result["skipped"] == ["HistGradientBoosting"]
    assert not process.alive()


def test_a_fit_error_beside_is_the_same_error_and_the_run_goes_on(project: Project) -> None:
    data = arrays(project, "iris", arch="mlp")
    data.y["train"] = np.zeros_like(data.y["train"])  # one class left in the training rows
    process = beside(data)
    with pytest.raises(ValueError, match="class"):
        strong.fit_strong_baseline(data, {"accuracy": 0.5}, beside=process)
    assert not process.alive()


def test_a_killed_process_beside_costs_the_comparison_not_the_run(project: Project) -> None:
    data = arrays(project, "iris", arch="mlp")
    process = beside(data)
    os.kill(process._process.pid, signal.SIGKILL)
    evaluation = {"test": {"accuracy": 0.5}, "network_fit_seconds": 1.0}
    service._global_views(data, TrainConfig(), evaluation, lambda x: np.zeros((len(x), 3)),
                          NullReporter(), process)  # fmt: skip
    assert "strong_baseline" not in evaluation
    assert evaluation["strong_baseline_error"] == (
        f"BaselineUnavailable: the process fitting the strong baseline ended (exit code "
        f"{-signal.SIGKILL})"
    )


def test_the_pipe_refuses_an_oversized_or_torn_frame() -> None:
    whole = pipe_frames.frame({"kind": "fitting", "name": "Ridge"}, {"v": np.arange(3.0)})
    meta, arrays_ = pipe_frames.read_frame(io.BytesIO(whole))
    assert meta == {"kind": "fitting", "name": "Ridge"} and arrays_["v"].tolist() == [0, 1, 2]
    assert pipe_frames.read_frame(io.BytesIO(b"")) is None
    with pytest.raises(ValueError, match="cut short"):
        pipe_frames.read_frame(io.BytesIO(whole[:-5]))
    huge = (pipe_frames.MAX_FRAME_BYTES + 1).to_bytes(8, "little")
    with pytest.raises(ValueError, match="over the limit"):
        pipe_frames.read_frame(io.BytesIO(huge + b"x" * 10))


def test_a_job_worker_still_needs_its_project_and_job() -> None:
    done = subprocess.run([sys.executable, "-m", "lepton_desktop", "worker", "train"],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2
    assert "--project and --job are required" in done.stderr


def _baseline_children(pid: int) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if "strong-baseline" in child.cmdline():
                found.append(child)
        except psutil.Error:
            pass
    return found


def test_a_killed_train_leaves_no_process_beside(tmp_path: Path) -> None:
    path = tmp_path / "p.lepton"
    with Project.create(path) as p:
        p.import_dataset(SAMPLES / "iris.csv", "iris", target="species")
    train = subprocess.Popen(
        [sys.executable, "-m", "lepton_desktop", "train", str(path), "iris", "--arch", "mlp",
         "--epochs", "5000", "--patience", "5000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (children := _baseline_children(train.pid)):
            assert time.monotonic() < deadline, "no strong-baseline process started"
            time.sleep(0.1)
        train.kill()
        train.wait(10)
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, "the strong baseline's process outlived its killed parent"
    finally:
        train.kill()
