"""The job functions a worker runs, by kind: import, prep, train."""

from __future__ import annotations

from typing import Any

from lepton_desktop.core.entities import DatasetVersion, Job
from lepton_desktop.core.progress import Reporter
from lepton_desktop.core.project import Project


def import_job(project: Project, job: Job, reporter: Reporter) -> dict[str, Any]:
    """Import ``args.source`` as dataset ``args.name``."""
    args = job.args
    version = project.import_dataset(
        args["source"],
        args["name"],
        kind=args.get("kind"),
        target=args.get("target"),
        time_column=args.get("time_column"),
        job_id=job.id,
        reporter=reporter,
    )
    return version_result(version)


def prep_job(project: Project, job: Job, reporter: Reporter) -> dict[str, Any]:
    """Preprocess ``args.dataset`` with ``args.options`` into a new version."""
    from lepton_desktop.core.datasets.prep import PrepOptions

    options = PrepOptions.from_dict(job.args["options"])
    version = project.prep(job.args["dataset"], options, job_id=job.id, reporter=reporter)
    return version_result(version)


def version_result(version: DatasetVersion) -> dict[str, Any]:
    """What a dataset job reports: the new version."""
    return {
        "dataset": version.ref,
        "version_id": version.id,
        "rows": version.n_rows,
        "columns": len(version.columns),
        "splits": version.splits,
    }


def train_job(project: Project, job: Job, reporter: Reporter) -> dict[str, Any]:
    """Train (or resume) the run ``args.run_id`` (torch is imported only now)."""
    from lepton_desktop.core.training.service import train_job as run

    return run(project, job, reporter)


def tune_job(project: Project, job: Job, reporter: Reporter) -> dict[str, Any]:
    """Run the study ``args.study`` until ``args.n_trials`` trials are finished."""
    from lepton_desktop.core.tuning.runner import tune_job as run

    return run(project, job, reporter)


def trial_job(project: Project, job: Job, reporter: Reporter) -> dict[str, Any]:
    """One extra trial process of a ``tune`` job (``--jobs K`` starts K-1 of them)."""
    from lepton_desktop.core.tuning.runner import trial_job as run

    return run(project, job, reporter)


def export_job(project: Project, job: Job, reporter: Reporter) -> dict[str, Any]:
    """Export ``args.model`` as ``args.format`` to ``args.out`` (see core/export)."""
    from lepton_desktop.core.export import export_model

    args = job.args
    return export_model(project, args["model"], args["format"], args["out"], reporter).to_dict()


def serve_job(project: Project, job: Job, reporter: Reporter) -> dict[str, Any]:
    """Run the server of deployment ``args.deployment_id`` until the job is cancelled."""
    from lepton_desktop.core.serving.worker import serve_job as run

    return run(project, job, reporter)


JOB_FUNCTIONS = {
    "import": import_job,
    "prep": prep_job,
    "train": train_job,
    "export": export_job,
    "tune": tune_job,
    "trial": trial_job,
    "serve": serve_job,
}
