"""The ``import`` and ``prep`` jobs: a new dataset version from a file or a parent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lepton_desktop.core.context import ProjectContext
from lepton_desktop.core.entities import DatasetVersion, Job
from lepton_desktop.core.progress import Reporter
from lepton_desktop.core.store import datasets as dataset_store


def import_job(ctx: ProjectContext, job: Job, reporter: Reporter) -> dict[str, Any]:
    """Import ``args.source`` as dataset ``args.name``."""
    from lepton_desktop.core.datasets.importing import import_source

    args = job.args
    version = import_source(
        ctx.conn,
        Path(args["source"]),
        name=args["name"],
        kind=args.get("kind"),
        target=args.get("target"),
        time_column=args.get("time_column"),
        job_id=job.id,
        reporter=reporter,
    )
    return version_result(version)


def prep_job(ctx: ProjectContext, job: Job, reporter: Reporter) -> dict[str, Any]:
    """Preprocess ``args.dataset`` with ``args.options`` into a new version."""
    from lepton_desktop.core.datasets.prep import PrepOptions, prepare

    options = PrepOptions.from_dict(job.args["options"])
    parent = dataset_store.resolve(ctx.conn, job.args["dataset"])
    version = prepare(ctx.conn, parent, options, job_id=job.id, reporter=reporter)
    return version_result(version)


def version_result(version: DatasetVersion) -> dict[str, Any]:
    """What a dataset job reports: the new version, and what its user should know."""
    from lepton_desktop.core.datasets.notes import version_warnings

    return {
        "dataset": version.ref,
        "version_id": version.id,
        "rows": version.n_rows,
        "columns": len(version.columns),
        "splits": version.splits,
        "warnings": version_warnings(version),
    }
