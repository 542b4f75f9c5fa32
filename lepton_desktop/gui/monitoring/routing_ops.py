"""The Model update page's live routing: read the running server, restart it with other
candidates.

A server reads its canary and shadow candidates when it starts (they shape its model
set and its request handling), so changing them is a restart: the server is stopped
(through this window's worker when it started it, else through its job's cancel
flag), its deployment is watched on the DB thread until it says stopped, and a new
deployment like it (same models, address and bound port, token and options) is queued
with the candidates and its ``serve`` worker started. Clients keep the same address;
requests sent during the restart (a second or two) are refused by a closed port.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer

from lepton_desktop.core.entities import Deployment
from lepton_desktop.core.errors import LeptonError
from lepton_desktop.gui.session import Changes, ProjectSession

if TYPE_CHECKING:
    from lepton_desktop.core.project import Project
    from lepton_desktop.gui.tasks import OnError

#: How long a restart waits for the old server to stop before it gives up.
STOP_WAIT_S = 30.0
#: How often the old deployment's state is read meanwhile.
POLL_MS = 200
JOBS = Changes(jobs=True)


def read_server(project: Project) -> Deployment | None:
    """DB thread: the newest queued, starting or running deployment (None: none)."""
    return project.serving.active()


def load_server(session: ProjectSession, on_done: Callable[[Deployment | None], None],
                on_error: OnError, owner: object) -> None:  # fmt: skip
    """Read the running server on the DB thread."""
    session.query(read_server, on_done, on_error, owner)


def restart_with_candidates(
    session: ProjectSession,
    deployment: Deployment,
    model: str,
    canary: tuple[int, float] | None,
    shadow: int | None,
    on_done: Callable[[Deployment], None],
    on_error: OnError,
) -> None:
    """Check the candidates, stop ``deployment``'s server, wait until it has stopped,
    then start it again with ``model``'s candidates set (see
    ``ServingManager.requeue_with_candidates``)."""
    deadline = time.monotonic() + STOP_WAIT_S

    def check() -> None:
        session.query(lambda p: p.serving.get(deployment.id), stopped, on_error)

    def stopped(current: Deployment) -> None:
        if not current.active:
            session.command(requeue, JOBS, queued, on_error)
        elif time.monotonic() < deadline:
            QTimer.singleShot(POLL_MS, check)
        else:
            on_error(LeptonError(
                f"the server of deployment {deployment.id} did not stop within "
                f"{STOP_WAIT_S:.0f} s; nothing was restarted"))  # fmt: skip

    def requeue(project: Project) -> tuple[Deployment, int]:
        return project.serving.requeue_with_candidates(deployment.id, model, canary=canary,
                                                       shadow=shadow)  # fmt: skip

    def queued(result: tuple[Deployment, int]) -> None:
        new, job_id = result
        session.jobs.start("serve", job_id)
        on_done(new)

    def stop(_options: object) -> None:
        job_id = deployment.job_id
        if job_id is not None and job_id in session.jobs.running_ids():
            session.jobs.cancel(job_id)
            check()
        else:
            session.command(lambda p: p.serving.stop(deployment.id), JOBS,
                            lambda _r: check(), on_error)  # fmt: skip

    # Refused candidates are named before the server is touched: it keeps running then.
    def check_candidates(project: Project) -> object:
        return project.serving.candidate_options(deployment.id, model, canary=canary,
                                                 shadow=shadow)  # fmt: skip

    session.query(check_candidates, stop, on_error)
