"""The ``jobs`` table: queued work, heartbeats, progress and cancel flags.

Every job names the process that answers for it (``owner_pid`` with that process's
start time): the launcher that queued it, then the worker that claimed it. Whoever
opens the project recovers a job whose owner is gone (``core.jobs``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from lepton_desktop.core.entities import Job
from lepton_desktop.core.errors import NotFoundError
from lepton_desktop.core.faults import kill_point
from lepton_desktop.core.processes import this_process
from lepton_desktop.core.store.db import transaction

_COLUMNS = (
    "id, kind, status, args, progress_done, progress_total, message, error, result, pid, "
    "heartbeat_at, cancel_requested, created_at, started_at, finished_at, owner_pid, "
    "owner_started_at"
)
FINISHED = ("succeeded", "failed", "cancelled", "interrupted")


def _job(row: tuple[Any, ...]) -> Job:
    return Job(
        id=row[0],
        kind=row[1],
        status=row[2],
        args=json.loads(row[3]),
        progress_done=row[4],
        progress_total=row[5],
        message=row[6],
        error=row[7],
        result=json.loads(row[8]) if row[8] else None,
        pid=row[9],
        heartbeat_at=row[10],
        cancel_requested=bool(row[11]),
        created_at=row[12],
        started_at=row[13],
        finished_at=row[14],
        owner_pid=row[15],
        owner_started_at=row[16],
    )


def create(conn: sqlite3.Connection, kind: str, args: dict[str, Any]) -> int:
    """Queue a job owned by this process (its launcher) and return its id."""
    outer = conn.in_transaction
    with transaction(conn):
        cur = conn.execute(
            "INSERT INTO jobs (kind, status, args, created_at, owner_pid, owner_started_at) "
            "VALUES (?, 'queued', ?, ?, ?, ?)",
            (kind, json.dumps(args), time.time(), *this_process()),
        )
    if not outer:  # (inside a caller's transaction, the caller marks its own commit)
        kill_point("after-queue")
    return int(cur.lastrowid or 0)


def get(conn: sqlite3.Connection, job_id: int) -> Job:
    """Return one job. Raises NotFoundError."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no job {job_id}")
    return _job(row)


def list_jobs(
    conn: sqlite3.Connection, *, active_only: bool = False, limit: int = 200
) -> list[Job]:
    """Return the newest jobs first (only queued and running ones if ``active_only``)."""
    where = "WHERE status IN ('queued', 'running')" if active_only else ""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM jobs {where} ORDER BY id DESC LIMIT ?", (limit,)
    ).fetchall()
    return [_job(r) for r in rows]


def mark_running(conn: sqlite3.Connection, job_id: int) -> None:
    """Claim a queued job for this process. Raises NotFoundError if it is not queued."""
    now = time.time()
    pid, started = this_process()
    with transaction(conn):
        cur = conn.execute(
            "UPDATE jobs SET status = 'running', pid = ?, started_at = ?, heartbeat_at = ?, "
            "owner_pid = ?, owner_started_at = ? WHERE id = ? AND status = 'queued'",
            (pid, now, now, pid, started, job_id),
        )
    if cur.rowcount != 1:
        raise NotFoundError(f"job {job_id} is not waiting to run")


def heartbeat(conn: sqlite3.Connection, job_id: int) -> None:
    """Record that the job's worker is alive."""
    with transaction(conn):
        conn.execute("UPDATE jobs SET heartbeat_at = ? WHERE id = ?", (time.time(), job_id))


def set_progress(
    conn: sqlite3.Connection, job_id: int, done: int, total: int | None, message: str
) -> bool:
    """Store progress and return whether the user asked the job to stop."""
    with transaction(conn):
        conn.execute(
            "UPDATE jobs SET progress_done = ?, progress_total = ?, message = ?, "
            "heartbeat_at = ? WHERE id = ?",
            (done, total, message, time.time(), job_id),
        )
        row = conn.execute("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return bool(row and row[0])


def request_cancel(conn: sqlite3.Connection, job_id: int) -> None:
    """Ask the job's worker to stop at its next check; a queued job is cancelled now."""
    with transaction(conn):
        conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
        conn.execute(
            "UPDATE jobs SET status = 'cancelled', finished_at = ? "
            "WHERE id = ? AND status = 'queued'",
            (time.time(), job_id),
        )


def finish(
    conn: sqlite3.Connection,
    job_id: int,
    status: str,
    *,
    error: str | None = None,
    result: dict[str, Any] | None = None,
) -> None:
    """Record the job's outcome: succeeded, failed, cancelled or interrupted."""
    if status not in FINISHED:
        raise ValueError(status)
    with transaction(conn):
        conn.execute(
            "UPDATE jobs SET status = ?, error = ?, result = ?, finished_at = ? WHERE id = ?",
            (
                status,
                error,
                json.dumps(result) if result is not None else None,
                time.time(),
                job_id,
            ),
        )


def stale_running(conn: sqlite3.Connection, older_than: float) -> list[Job]:
    """Running jobs whose last heartbeat is older than ``older_than`` (epoch seconds)."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM jobs WHERE status = 'running' "
        "AND (heartbeat_at IS NULL OR heartbeat_at < ?)",
        (older_than,),
    ).fetchall()
    return [_job(r) for r in rows]


def queued(conn: sqlite3.Connection) -> list[Job]:
    """Jobs waiting for a worker, oldest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM jobs WHERE status = 'queued' ORDER BY id"
    ).fetchall()
    return [_job(r) for r in rows]


def delete(conn: sqlite3.Connection, job_id: int) -> None:
    """Forget a finished job (its initiator has shown the outcome)."""
    with transaction(conn):
        conn.execute(
            "DELETE FROM jobs WHERE id = ? AND status NOT IN ('queued', 'running')", (job_id,)
        )
