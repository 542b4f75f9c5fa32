"""Running one job: claim it, beat the heart, report progress, record the outcome.

Workers (``lepton-desktop worker KIND``), the CLI and the Python API all run jobs
through :func:`run_job`, so foreground work is as visible to other processes (and as
safe from stale-job recovery) as background work.

Each job kind registers a function ``(project, job) -> result dict``. The runner
owns everything around it, so every kind of work gets heartbeats, the cancel flag,
progress and a clean failure for free.
"""

from __future__ import annotations

import signal
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lepton_desktop.core.entities import Job
from lepton_desktop.core.errors import CancelledError, LeptonError
from lepton_desktop.core.progress import Reporter
from lepton_desktop.core.store import jobs as job_store
from lepton_desktop.core.store.db import connect

if TYPE_CHECKING:
    from lepton_desktop.core.project import Project

#: Seconds between heartbeats of a running job.
HEARTBEAT_INTERVAL_S = 2.0

JobFunction = Callable[["Project", Job, Reporter], dict[str, Any]]
#: Progress is written at most this often (seconds); cancel is checked as often.
PROGRESS_EVERY_S = 0.2


class JobReporter:
    """Writes progress into the job row and raises CancelledError when asked to stop.

    Args:
        project: the open project (its connection is used from this thread only).
        job_id: the job being run.
        echo: another reporter (a terminal progress bar) that sees every update.
    """

    def __init__(self, project: Project, job_id: int, echo: Reporter | None = None) -> None:
        self._project = project
        self._job_id = job_id
        self._echo = echo
        self._last = 0.0

    def update(self, done: int, total: int | None, message: str = "") -> None:
        """Record progress (throttled) and stop if the user cancelled."""
        if self._echo is not None:
            self._echo.update(done, total, message)
        now = time.monotonic()
        if now - self._last < PROGRESS_EVERY_S and done != total:
            return
        self._last = now
        if job_store.set_progress(self._project.conn, self._job_id, done, total, message):
            raise CancelledError()


class _Heartbeat(threading.Thread):
    """Writes the job's heartbeat from its own connection while the work runs."""

    def __init__(self, path: Path, job_id: int) -> None:
        super().__init__(name=f"heartbeat-{job_id}", daemon=True)
        self._path = path
        self._job_id = job_id
        self.stop = threading.Event()

    def run(self) -> None:
        conn = connect(self._path)
        try:
            while not self.stop.wait(HEARTBEAT_INTERVAL_S):
                job_store.heartbeat(conn, self._job_id)
        finally:
            conn.close()


def _raise_cancel(signum: int, frame: object) -> None:
    raise CancelledError("stopped by a signal")


def run_job(
    project_path: Path, job_id: int, function: JobFunction, echo: Reporter | None = None
) -> Job:
    """Run a queued job to its end and return the finished job row.

    SIGTERM becomes a cancellation, so the work cleans up after itself. Errors a user
    caused end the job as ``failed`` with the message; unexpected ones keep the
    traceback in the job's error text and are re-raised.
    """
    on_main_thread = threading.current_thread() is threading.main_thread()
    # A script calling Project.train gets its own SIGTERM handler back afterwards.
    previous = signal.signal(signal.SIGTERM, _raise_cancel) if on_main_thread else None
    try:
        return _run(project_path, job_id, function, echo)
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _run(project_path: Path, job_id: int, function: JobFunction, echo: Reporter | None) -> Job:
    from lepton_desktop.core.project import Project  # the facade imports this module

    with Project.open(project_path) as project:
        job_store.mark_running(project.conn, job_id)
        beat = _Heartbeat(project_path, job_id)
        beat.start()
        try:
            job = project.job(job_id)
            result = function(project, job, JobReporter(project, job_id, echo))
            job_store.finish(project.conn, job_id, "succeeded", result=result)
        except (CancelledError, KeyboardInterrupt) as exc:
            job_store.finish(project.conn, job_id, "cancelled", error=str(exc) or "interrupted")
        except LeptonError as exc:
            job_store.finish(project.conn, job_id, "failed", error=str(exc))
        except BaseException:
            job_store.finish(project.conn, job_id, "failed", error=traceback.format_exc())
            raise
        finally:
            beat.stop.set()
            beat.join()
        return project.job(job_id)
