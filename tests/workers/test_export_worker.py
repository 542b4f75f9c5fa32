"""The ``export`` job as the GUI runs it: a real ``worker export`` subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lepton_desktop.core.inference.bundle import read_bundle
from lepton_desktop.core.project import Project
from lepton_desktop.core.system.launch import worker_argv
from tests.export_factory import export_project  # noqa: F401

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def _run_worker(project: Path, job_id: int) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        worker_argv("export", project, job_id), env=env, capture_output=True, timeout=120
    )


def test_export_job_writes_a_checked_bundle_and_reports_it(
    export_project: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.lepton"
    shutil.copy(export_project, path)
    out = tmp_path / "digits.zip"
    with Project.open(path) as project:
        job_id = project.create_job("export", {"model": "digits", "format": "bundle",
                                               "out": str(out)})  # fmt: skip
        refused = project.create_job("export", {"model": "digits", "format": "bundle",
                                                "out": str(out)})  # fmt: skip
    assert _run_worker(path, job_id).returncode == 0
    with Project.open(path) as project:
        job = project.job(job_id)
    assert job.status == "succeeded", job.error
    assert job.result["path"] == str(out) and job.result["model"] == "digits:1"
    assert job.result["max_abs_diff"] == 0.0 and job.result["format"] == "bundle"
    (parts,) = read_bundle(out)
    assert parts.ref == "digits:1"
    # The same export again: the file exists, the job fails with the reason.
    before = out.read_bytes()
    assert _run_worker(path, refused).returncode == 1
    with Project.open(path) as project:
        failed = project.job(refused)
    assert failed.status == "failed" and "digits.zip already exists" in (failed.error or "")
    assert out.read_bytes() == before
