"""The ``train`` job: train (or resume) one queued run, evaluate it, register its model."""

from __future__ import annotations

from typing import Any

from lepton_desktop.core.context import ProjectContext
from lepton_desktop.core.entities import Job
from lepton_desktop.core.progress import Reporter


def train_job(ctx: ProjectContext, job: Job, reporter: Reporter) -> dict[str, Any]:
    """Args ``{"run_id": N, "resume": bool, "lineage": {...}}`` (torch is imported only now)."""
    from lepton_desktop.core.training.service import run_training

    return run_training(
        ctx,
        int(job.args["run_id"]),
        reporter,
        resume=bool(job.args.get("resume")),
        lineage=job.args.get("lineage"),
    )
