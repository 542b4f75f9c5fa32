"""The ``requests`` job: export or replay a selection of the request log, compare a
candidate with the champion, or build a retrain-with-feedback dataset (for the GUI).

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
    fields), and ``out`` (export) or ``target`` and ``limit`` (replay); or ``action``
    ``compare`` (``model``, ``candidate``) or ``feedback_dataset`` (``model``: the
    dataset of a retrain with feedback, whose run the GUI queues next)."""
    from lepton_desktop.core.monitoring.replay import DEFAULT_REPLAYED, replay
    from lepton_desktop.core.monitoring.requests import RequestFilter, RequestLog

    args = job.args
    if args["action"] in ("compare", "feedback_dataset"):
        return _model_update(ctx, args, reporter)
    selection = RequestFilter(**args["filter"])
    if args["action"] == "export":
        return RequestLog(ctx).export(selection, args["out"], reporter)
    return replay(ctx, selection, args["target"], limit=args.get("limit", DEFAULT_REPLAYED),
                  reporter=reporter)  # fmt: skip


def _model_update(ctx: ProjectContext, args: dict[str, Any], reporter: Reporter
                  ) -> dict[str, Any]:  # fmt: skip
    from lepton_desktop.core.monitoring.compare import compare
    from lepton_desktop.core.monitoring.retrain import feedback_dataset

    if args["action"] == "compare":
        return compare(ctx, args["model"], args["candidate"])
    made = feedback_dataset(ctx, args["model"], reporter)
    return {"model": args["model"], "champion": made.champion.ref, "dataset": made.version.ref,
            "parent": made.parent.ref, "feedback_rows": made.feedback_rows,
            "requests": made.requests, "options": made.options}  # fmt: skip
