"""Running one job: claim it, beat the heart, report progress, record the outcome.

Workers (``lepton-desktop worker KIND``), the CLI and the Python API all run jobs
through :func:`run_job`, so foreground work is as visible to other processes (and as
safe from stale-job recovery) as background work.

Each job kind has a function ``(context, job, reporter) -> result dict`` (the
worker entry points in :mod:`lepton_desktop.workers`). The runner owns everything
around it, so every kind of work gets heartbeats, the cancel flag, progress and a
clean failure for free. :func:`recover_stale_jobs` is the other half: whoever opens
a project marks the jobs of dead workers ``interrupted`` and cleans up after them,
including jobs still queued whose launcher died before any worker claimed them.
"""

from __future__ import annotations

import signal
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lepton_desktop.core.context import ProjectContext
from lepton_desktop.core.entities import Job
from lepton_desktop.core.errors import CancelledError, LeptonError
from lepton_desktop.core.faults import kill_point
from lepton_desktop.core.processes import alive
from lepton_desktop.core.progress import Reporter
from lepton_desktop.core.store import datasets as dataset_store
from lepton_desktop.core.store import jobs as job_store
from lepton_desktop.core.store import runs as run_store
from lepton_desktop.core.store import serving as serving_store
from lepton_desktop.core.store import tuning as tuning_store
from lepton_desktop.core.store.db import connect
from lepton_desktop.core.store.files import open_file

if TYPE_CHECKING:
    import sqlite3

#: Seconds between heartbeats of a running job.
HEARTBEAT_INTERVAL_S = 2.0
#: A running job whose heartbeat is older than this is considered dead.
STALE_AFTER_S = 30.0

JobFunction = Callable[[ProjectContext, Job, Reporter], dict[str, Any]]
#: Progress is written at most this often (seconds); cancel is checked as often.
PROGRESS_EVERY_S = 0.2


class JobReporter:
    """Writes progress into the job row and raises CancelledError when asked to stop.

    Args:
        conn: the project's connection (used from this thread only).
        job_id: the job being run.
        echo: another reporter (a terminal progress bar) that sees every update.
    """

    def __init__(
        self, conn: sqlite3.Connection, job_id: int, echo: Reporter | None = None
    ) -> None:
        self._conn = conn
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
        if job_store.set_progress(self._conn, self._job_id, done, total, message):
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
    ctx = open_context(project_path)
    conn = ctx.conn
    try:
        job_store.mark_running(conn, job_id)
        kill_point("after-claim")
        beat = _Heartbeat(project_path, job_id)
        beat.start()
        try:
            job = job_store.get(conn, job_id)
            result = function(ctx, job, JobReporter(conn, job_id, echo))
            job_store.finish(conn, job_id, "succeeded", result=result)
        except (CancelledError, KeyboardInterrupt) as exc:
            job_store.finish(conn, job_id, "cancelled", error=str(exc) or "interrupted")
        except LeptonError as exc:
            job_store.finish(conn, job_id, "failed", error=str(exc))
        except BaseException:
            job_store.finish(conn, job_id, "failed", error=traceback.format_exc())
            raise
        finally:
            beat.stop.set()
            beat.join()
        return job_store.get(conn, job_id)
    finally:
        conn.close()


def open_context(path: Path) -> ProjectContext:
    """Open a project file for a job (checked, never upgraded) and recover stale jobs.

    Raises:
        NotAProjectError, SchemaTooNewError, SchemaTooOldError: see
            :func:`~lepton_desktop.core.store.files.open_file`.
    """
    ctx = ProjectContext(path, open_file(path).conn)
    recover_stale_jobs(ctx.conn)
    return ctx


def recover_stale_jobs(conn: sqlite3.Connection, stale_after: float = STALE_AFTER_S) -> list[int]:
    """Mark jobs whose process is gone as interrupted and clean up after them.

    A running job's worker is gone when its process no longer exists, or when its
    heartbeat is older than ``stale_after`` seconds (a hung worker). A queued job is
    abandoned when its launcher died before a worker claimed it (rows from before
    owners were recorded: when it waited longer than ``stale_after``). Either way its
    run becomes ``interrupted`` (resumable), its deployment and study stop, a tuning
    trial it was running fails, and a dataset version it was writing is discarded.
    Returns the ids of the jobs marked.
    """
    now = time.time()
    dead = [
        j.id
        for j in job_store.stale_running(conn, now + 1)
        if not _worker_alive(j) or (j.heartbeat_at or 0) < now - stale_after
    ]
    for job_id in dead:
        job_store.finish(conn, job_id, "interrupted", error="the worker stopped unexpectedly")
    abandoned = [j.id for j in job_store.queued(conn) if _abandoned(j, now - stale_after)]
    for job_id in abandoned:
        job_store.finish(
            conn, job_id, "interrupted", error="its launcher stopped before a worker started it"
        )
    release_orphans(conn)
    for version_id in dataset_store.unfinished_versions(conn):
        dataset_store.discard_version(conn, version_id)
    return dead + abandoned


def job_alive(conn: sqlite3.Connection, job_id: int, stale_after: float = STALE_AFTER_S) -> bool:
    """Whether a job is running in a live worker (e.g. a trial worker's ``tune`` parent).

    The job's row alone is not enough: a killed worker leaves it ``running`` until
    someone opens the project, so its process and heartbeat are checked as well.
    """
    job = job_store.get(conn, job_id)
    fresh = (job.heartbeat_at or 0) >= time.time() - stale_after
    return job.status == "running" and fresh and _worker_alive(job)


def cancel_job(conn: sqlite3.Connection, job_id: int) -> None:
    """Ask a job's worker to stop at its next progress report.

    A job still queued is cancelled at once (and a run waiting for it becomes
    ``interrupted``, so it can be resumed, archived or deleted).
    """
    job_store.request_cancel(conn, job_id)
    run_store.interrupt_orphans(conn)
    serving_store.interrupt_orphans(conn)


def release_orphans(conn: sqlite3.Connection) -> None:
    """Runs, deployments, studies and trials whose job ended without them.

    Runs become ``interrupted`` (resumable), deployments and studies ``stopped``, and
    Optuna trials left ``RUNNING`` by a dead worker ``FAIL`` (what Optuna's heartbeat
    would do a grace period later), so a study never shows a trial nobody runs.
    """
    run_store.interrupt_orphans(conn)
    serving_store.interrupt_orphans(conn)
    tuning_store.stop_orphans(conn)
    tuning_store.fail_orphan_trials(conn)


def _worker_alive(job: Job) -> bool:
    # The owner's start time tells the worker from a process that reused its pid.
    same = job.owner_pid is not None and job.owner_pid == job.pid
    return alive(job.pid, job.owner_started_at if same else None)


def _abandoned(job: Job, waited_since: float) -> bool:
    if job.owner_pid is None:
        return job.created_at < waited_since
    return not alive(job.owner_pid, job.owner_started_at)
