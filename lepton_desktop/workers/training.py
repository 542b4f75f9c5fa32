"""The ``train`` job: train (or resume) one queued run, evaluate it, register its model."""

from __future__ import annotations

from typing import Any

from lepton_desktop.core.context import ProjectContext
from lepton_desktop.core.entities import Job
from lepton_desktop.core.progress import Reporter


def train_job(ctx: ProjectContext, job: Job, reporter: Reporter) -> dict[str, Any]:
    """Args ``{"run_id": N, "resume": bool, "lineage": {...}}`` (torch is imported only now,
    after the strong baseline's process has started importing scikit-learn beside)."""
    from lepton_desktop.core.store import runs as run_store
    from lepton_desktop.core.training import strong_baseline
    from lepton_desktop.core.training.config import TrainConfig

    config = TrainConfig.from_dict(run_store.get(ctx.conn, int(job.args["run_id"])).config)
    if config.strong_baseline:
        strong_baseline.prewarm()
    from lepton_desktop.core.training.service import run_training

    return run_training(
        ctx,
        int(job.args["run_id"]),
        reporter,
        resume=bool(job.args.get("resume")),
        lineage=job.args.get("lineage"),
    )
