"""Which function a worker runs for each job kind, and the ``worker`` command itself."""

from __future__ import annotations

from pathlib import Path

from lepton_desktop.core.jobs import JobFunction, run_job
from lepton_desktop.workers.datasets import import_job, prep_job
from lepton_desktop.workers.export import export_job
from lepton_desktop.workers.requests import requests_job
from lepton_desktop.workers.serving import serve_job
from lepton_desktop.workers.training import train_job
from lepton_desktop.workers.tuning import trial_job, tune_job

JOB_FUNCTIONS: dict[str, JobFunction] = {
    "import": import_job,
    "prep": prep_job,
    "train": train_job,
    "export": export_job,
    "tune": tune_job,
    "trial": trial_job,
    "serve": serve_job,
    "requests": requests_job,
}
#: The kinds ``lepton-desktop worker KIND`` accepts.
KINDS = tuple(JOB_FUNCTIONS)


def run_worker(kind: str, project: Path, job_id: int) -> int:
    """Run one queued job of ``kind`` to its end; return the process's exit status."""
    job = run_job(project, job_id, JOB_FUNCTIONS[kind])
    return 0 if job.status == "succeeded" else 1
