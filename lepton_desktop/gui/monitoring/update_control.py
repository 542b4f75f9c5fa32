"""What the Model update page's buttons do: compare a candidate, build a retraining
dataset from the feedback and queue its run, promote, and change the live routing.

The page (:mod:`.update_panel`) only draws and asks; this controller runs each request
on the session (the DB thread or a ``requests`` job) and writes what happened in the
page's status line. The tab owns it and hands it the jobs it started when they end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer

from lepton_desktop.core.entities import Deployment, Job
from lepton_desktop.gui.monitoring import ops, routing_ops
from lepton_desktop.gui.monitoring.update_panel import UpdatePanel
from lepton_desktop.gui.session import ProjectSession, describe_job


class UpdateController(QObject):
    """Runs the Model update page's requests.

    Args:
        page: the page whose signals it answers.
        session: the open session now (None: nothing is open).
        track_job: told the id of each job started here (the tab hands it back to
            :meth:`job_ended` when it ends).
        refused: shows an error that belongs to no status line.
    """

    #: The ``requests`` job actions started here.
    ACTIONS = ("compare", "feedback_dataset")

    def __init__(
        self,
        page: UpdatePanel,
        session: Callable[[], ProjectSession | None],
        track_job: Callable[[int], None],
        refused: Callable[[BaseException], None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.page = page
        self._session = session
        self._track_job = track_job
        self._refused = refused
        page.compareRequested.connect(
            lambda model, v: self._start_job({"action": "compare", "model": model,
                                              "candidate": v}))  # fmt: skip
        page.retrainRequested.connect(
            lambda model: self._start_job({"action": "feedback_dataset", "model": model})
        )
        page.promoteRequested.connect(self._promote)
        page.routing.applyRequested.connect(self._route)

    def _say(self, text: str) -> None:
        self.page.status.setText(text)

    def reload(self) -> None:
        """Read the versions and the running server again (the page was shown)."""
        session = self._session()
        if session is not None:
            ops.load_versions(session, self.page.set_versions, self._refused, self)
        self.reload_server()

    def reload_server(self) -> None:
        """Read the running server again (its routing box follows it)."""
        session = self._session()
        if session is not None:
            routing_ops.load_server(session, self.page.routing.set_server,
                                    self._refused, self)  # fmt: skip

    def job_ended(self, job: Job) -> None:
        """Show what a job started here gave (a comparison, or the retraining's start)."""
        session = self._session()
        if session is None:
            return
        if job.status != "succeeded" or job.result is None:
            detail = job.error or session.jobs.output(job.id).strip() or job.status
            self._say(f"{describe_job(job)} failed: {detail}")
        elif job.args.get("action") == "compare":
            self.page.show_comparison(job.result)
        else:
            self._retrain_built(job.result)

    # -- live routing ----------------------------------------------------------------

    def _route(self, mode: str, version: int, share: float) -> None:
        box, session = self.page.routing, self._session()
        if session is None or box.deployment is None:
            return
        canary = (version, share) if mode == "canary" else None
        shadow = version if mode == "shadow" else None
        self._say("Restarting the server with the new routing (a running server reads its "
                  "candidates when it starts)…")  # fmt: skip
        routing_ops.restart_with_candidates(
            session, box.deployment, box.model, canary, shadow, self._rerouted,
            lambda exc: self._say(str(exc)))  # fmt: skip

    def _rerouted(self, deployment: Deployment) -> None:
        self._say(f"The server was restarted as deployment {deployment.id} on port "
                  f"{deployment.port} with the new routing.")  # fmt: skip
        self.page.routing.set_server(deployment)
        self._follow_server(time.monotonic() + routing_ops.STOP_WAIT_S)

    def _follow_server(self, deadline: float) -> None:
        """Re-read the server until the restarted one runs (the box shows its routing)."""

        def read(found: Deployment | None) -> None:
            self.page.routing.set_server(found)
            if (found is None or found.status != "running") and time.monotonic() < deadline:
                QTimer.singleShot(routing_ops.POLL_MS, lambda: self._follow_server(deadline))

        session = self._session()
        if session is not None:
            routing_ops.load_server(session, read, self._refused, self)

    # -- compare, retrain, promote ---------------------------------------------------

    def _start_job(self, args: dict[str, Any]) -> None:
        session = self._session()
        if session is not None:
            ops.start_requests_job(session, {"filter": {}, **args}, self._track_job,
                                   lambda exc: self._say(str(exc)))  # fmt: skip

    def _promote(self, model: str, candidate: int) -> None:
        session = self._session()
        if session is not None:
            ops.promote(session, model, candidate, self._promoted,
                        lambda exc: self._say(str(exc)))  # fmt: skip

    def _promoted(self, result: dict[str, Any]) -> None:
        self._say(f"{result['model']}:{result['champion']} is the champion now (was "
                  f"{result['model']}:{result['previous']}); a running server follows it")
        self.reload()

    def _retrain_built(self, built: dict[str, Any]) -> None:
        session = self._session()
        if session is None:
            return
        rows = f"{built['dataset']}: {built['parent']} + {built['feedback_rows']:,} labelled"
        self._say(f"{rows} served rows; training with {built['champion']}'s settings…")
        ops.queue_retrain_run(
            session, built,
            lambda run_id: self._say(
                f"{rows} rows; training run {run_id} started (Training tab); compare its "
                "model here when it is registered"),
            lambda exc: self._say(str(exc)))  # fmt: skip
