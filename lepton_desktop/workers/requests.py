"""The ``requests`` job: export or replay a selection of the request log (for the GUI).

An export of millions of rows, or a replay that loads torch, must not run on the GUI's
database thread: the Monitoring tab's Requests page queues this job and its worker
reports progress like any other.
"""

from __future__ import annotations

from typing import Any

from lepton_desktop.core.context import ProjectContext
from lepton_desktop.core.entities import Job
from lepton_desktop.core.progress import Reporter


def requests_job(ctx: ProjectContext, job: Job, reporter: Reporter) -> dict[str, Any]:
    """``args``: ``action`` (``export`` or ``replay``), ``filter`` (a RequestFilter's
    fields), and ``out`` (export) or ``target`` and ``limit`` (replay)."""
    from lepton_desktop.core.monitoring.replay import DEFAULT_REPLAYED, replay
    from lepton_desktop.core.monitoring.requests import RequestFilter, RequestLog

    args = job.args
    selection = RequestFilter(**args["filter"])
    if args["action"] == "export":
        return RequestLog(ctx).export(selection, args["out"], reporter)
    return replay(ctx, selection, args["target"], limit=args.get("limit", DEFAULT_REPLAYED),
                  reporter=reporter)  # fmt: skip
