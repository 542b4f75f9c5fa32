"""The ``serve`` job: run a deployment's server until the job is cancelled.

The GUI's worker and ``lepton-desktop serve PROJECT`` both run it. It records the
deployment's state in the project (starting, running with its real address and
models, stopped or failed with the error), keeps the loaded models current as the
registry changes, and watches the job's cancel flag.
"""

from __future__ import annotations

import logging
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

log = logging.getLogger(__name__)

#: How often the job looks at its cancel flag (seconds).
CANCEL_CHECK_S = 0.5


def serve_job(ctx: ProjectContext, job: Job, reporter: Reporter) -> dict[str, Any]:
    """Run deployment ``args.deployment_id`` until the job is cancelled.

    The deployment goes starting -> running (with the bound URL and port; the first
    server process records the loaded models and keeps them current as the registry
    changes) -> stopped, or failed with the error.
    """
    from lepton_desktop.core.monitoring.watcher import CHECK_ENV, CHECK_S, MonitorWatcher
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
    _profile_for_drift(ctx, spec.models)
    kill_point("serving")
    # Alerts are checked, and quality gauges published, while the server runs.
    watcher = MonitorWatcher(ctx.path, float(os.environ.get(CHECK_ENV, CHECK_S)))
    watcher.start()
    events = _EventRecorder(ctx, deployment_id, runner)
    try:
        error = _watch(runner, reporter, events)
    finally:
        watcher.stop()
        events.record()
    runner.stop()
    _finish(ctx, deployment_id, "failed" if error else "stopped", error)
    if error:
        raise LeptonError(error)
    return {"deployment_id": deployment_id, "url": runner.url, "served": runner.served}


def _profile_for_drift(ctx: ProjectContext, models: list[str]) -> None:
    """Profile the served versions' training data now, so that the log's writer keeps
    their drift sketches from the first requests (requests shipped meanwhile are
    counted when the profile is stored). Never stops the server: drift is read later."""
    from lepton_desktop.core.monitoring import reference

    try:
        for reason in reference.ensure_served(ctx, models):
            log.info("no drift reference: %s", reason)
    except Exception:  # a damaged dataset must not take the server down with it
        log.exception("profiling the served models for drift failed")


def _watch(runner: ServerRunner, reporter: Reporter, events: _EventRecorder) -> str | None:
    """Wait for a cancel (None) or for the server to die (its error); record its events."""
    try:
        while runner.alive():
            reporter.update(runner.served, None, f"serving on {runner.url}")
            events.record()
            time.sleep(CANCEL_CHECK_S)
    except (CancelledError, KeyboardInterrupt):
        return None
    return "the server stopped unexpectedly"


class _EventRecorder:
    """Stores the supervisor's new events (a process exited, restarted) in the project."""

    def __init__(self, ctx: ProjectContext, deployment_id: int, runner: ServerRunner) -> None:
        self.ctx, self.deployment_id, self.runner = ctx, deployment_id, runner
        self.recorded = 0

    def record(self) -> None:
        new = self.runner.events[self.recorded :]
        if new:
            serving_store.add_server_events(self.ctx.conn, self.deployment_id, new)
            self.recorded += len(new)


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
