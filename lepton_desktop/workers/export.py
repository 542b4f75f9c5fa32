"""The ``export`` job: write a model version as TorchScript, ONNX, a bundle or Triton."""

from __future__ import annotations

from typing import Any

from lepton_desktop.core.context import ProjectContext
from lepton_desktop.core.entities import Job
from lepton_desktop.core.progress import Reporter


def export_job(ctx: ProjectContext, job: Job, reporter: Reporter) -> dict[str, Any]:
    """Export ``args.model`` as ``args.format`` to ``args.out`` (see core/export)."""
    from lepton_desktop.core.export import export_model

    args = job.args
    return export_model(ctx, args["model"], args["format"], args["out"], reporter).to_dict()
