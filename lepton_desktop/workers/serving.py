"""The ``serve`` job: run a deployment's server until the job is cancelled.

The GUI's worker and ``lepton-desktop serve PROJECT`` both run it. It records the
deployment's state in the project (starting, running with its real address and
models, stopped or failed with the error), keeps the loaded models current as the
registry changes, and watches the job's cancel flag.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from lepton_desktop.core.context import ProjectContext
from lepton_desktop.core.entities import Job
from lepton_desktop.core.errors import CancelledError, LeptonError
from lepton_desktop.core.faults import kill_point
from lepton_desktop.core.progress import Reporter
from lepton_desktop.core.store import serving as serving_store

if TYPE_CHECKING:
    from lepton_desktop.core.serving.runner import ServerRunner

#: How often the job looks at its cancel flag (seconds).
CANCEL_CHECK_S = 0.5


def serve_job(ctx: ProjectContext, job: Job, reporter: Reporter) -> dict[str, Any]:
    """Run deployment ``args.deployment_id`` until the job is cancelled.

    The deployment goes starting -> running (with the bound URL and port; the first
    server process records the loaded models and keeps them current as the registry
    changes) -> stopped, or failed with the error.
    """
    from lepton_desktop.core.serving.runner import ServerRunner, spec_for_deployment

    deployment_id = int(job.args["deployment_id"])
    spec = spec_for_deployment(ctx, deployment_id)
    serving_store.update_deployment(
        ctx.conn, deployment_id, status="starting", pid=os.getpid(), error=None
    )
    runner = ServerRunner(spec)
    try:
        runner.start()
    except BaseException as exc:
        stopped = isinstance(exc, CancelledError | KeyboardInterrupt)
        _finish(ctx, deployment_id, "stopped" if stopped else "failed", _message(exc))
        raise
    serving_store.update_deployment(
        ctx.conn, deployment_id, status="running", url=runner.url, port=runner.port,
        started_at=time.time(),
    )  # fmt: skip
    kill_point("serving")
    error = _watch(runner, reporter)
    runner.stop()
    _finish(ctx, deployment_id, "failed" if error else "stopped", error)
    if error:
        raise LeptonError(error)
    return {"deployment_id": deployment_id, "url": runner.url, "served": runner.served}


def _watch(runner: ServerRunner, reporter: Reporter) -> str | None:
    """Wait for a cancel (None) or for the server to die (its error)."""
    try:
        while runner.alive():
            reporter.update(runner.served, None, f"serving on {runner.url}")
            time.sleep(CANCEL_CHECK_S)
    except (CancelledError, KeyboardInterrupt):
        return None
    return "the server stopped unexpectedly"


def _finish(ctx: ProjectContext, deployment_id: int, status: str, error: str | None) -> None:
    serving_store.update_deployment(
        ctx.conn, deployment_id, status=status, error=error, stopped_at=time.time()
    )


def _message(exc: BaseException) -> str:
    # CancelledError is a LeptonError: ask about it first, or this branch never runs.
    if isinstance(exc, CancelledError | KeyboardInterrupt):
        return "stopped while starting"
    if isinstance(exc, LeptonError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
