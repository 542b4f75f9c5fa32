"""Training runs, their metric and system series, and their checkpoints.

Metric and system rows are append-only and read incrementally (``WHERE id > ?``), so
the GUI's polling costs only what is new. Writers batch rows into one transaction
(:func:`add_metrics`): one commit per ~0.5 s instead of one per value.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from lepton_desktop.core.entities import MetricPoint, Run, SystemPoint
from lepton_desktop.core.errors import NotFoundError
from lepton_desktop.core.store.db import transaction

_COLUMNS = (
    "id, job_id, dataset_version_id, dataset_ref, arch, task, config, status, control, "
    "device, error, epochs_done, best_epoch, best_value, monitor, evaluation, archived, "
    "notes, created_at, started_at, finished_at"
)
MetricRow = tuple[int, str, int, int, float | None, float]
SystemRow = tuple[int, float, float | None, float | None, float | None, float | None]


def _run(row: Sequence[Any]) -> Run:
    values = list(row)
    values[6] = json.loads(values[6])
    values[15] = json.loads(values[15]) if values[15] else None
    values[16] = bool(values[16])
    return Run(*values)


def create(
    conn: sqlite3.Connection,
    *,
    dataset_version_id: int,
    dataset_ref: str,
    arch: str,
    task: str,
    config: dict[str, Any],
    job_id: int | None = None,
) -> int:
    """Insert a queued run; return its id."""
    with transaction(conn):
        cur = conn.execute(
            "INSERT INTO runs (job_id, dataset_version_id, dataset_ref, arch, task, config, "
            "status, created_at) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?)",
            (job_id, dataset_version_id, dataset_ref, arch, task, json.dumps(config), time.time()),
        )
    return int(cur.lastrowid or 0)


def get(conn: sqlite3.Connection, run_id: int) -> Run:
    """One run. Raises NotFoundError."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no run {run_id}")
    return _run(row)


def list_runs(conn: sqlite3.Connection, *, include_archived: bool = False) -> list[Run]:
    """Runs, newest first."""
    where = "" if include_archived else "WHERE archived = 0"
    return [_run(r) for r in conn.execute(f"SELECT {_COLUMNS} FROM runs {where} ORDER BY id DESC")]


def update(conn: sqlite3.Connection, run_id: int, **fields: Any) -> None:
    """Set some of a run's columns (status, control, device, error, epochs_done, ...)."""
    allowed = {
        "job_id",
        "status",
        "control",
        "device",
        "error",
        "epochs_done",
        "best_epoch",
        "best_value",
        "monitor",
        "evaluation",
        "archived",
        "notes",
        "started_at",
        "finished_at",
        "config",
    }
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"not run columns: {sorted(unknown)}")
    values = [
        json.dumps(v) if k in ("evaluation", "config") and v is not None else v
        for k, v in fields.items()
    ]
    assignments = ", ".join(f"{k} = ?" for k in fields)
    with transaction(conn):
        conn.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*values, run_id))


def control(conn: sqlite3.Connection, run_id: int) -> str | None:
    """The pending pause/stop request of a run, if any."""
    row = conn.execute("SELECT control FROM runs WHERE id = ?", (run_id,)).fetchone()
    return row[0] if row else None


def add_metrics(conn: sqlite3.Connection, rows: Sequence[MetricRow]) -> None:
    """Append ``(run_id, name, step, epoch, value, t)`` rows in one transaction."""
    if rows:
        with transaction(conn):
            conn.executemany(
                "INSERT INTO run_metrics (run_id, name, step, epoch, value, t) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )


def drop_metrics_after(conn: sqlite3.Connection, run_id: int, epoch: int) -> int:
    """Delete a run's metric rows of epochs after ``epoch``; return how many.

    A run resumed from its checkpoint at ``epoch`` trains the later steps again: rows
    a killed worker flushed beyond its last checkpoint would otherwise appear twice.
    (Step rows carry the epoch they belong to, so one condition covers both kinds.)
    """
    with transaction(conn):
        return conn.execute(
            "DELETE FROM run_metrics WHERE run_id = ? AND epoch > ?", (run_id, epoch)
        ).rowcount


def metrics_since(conn: sqlite3.Connection, run_id: int, after_id: int = 0) -> list[MetricPoint]:
    """Metric rows of a run with ``id > after_id``, oldest first."""
    rows = conn.execute(
        "SELECT id, run_id, name, step, epoch, value, t FROM run_metrics "
        "WHERE run_id = ? AND id > ? ORDER BY id",
        (run_id, after_id),
    ).fetchall()
    return [MetricPoint(*r) for r in rows]


def add_system(conn: sqlite3.Connection, rows: Sequence[SystemRow]) -> None:
    """Append ``(run_id, t, cpu %, rss MB, gpu %, gpu MB)`` samples in one transaction."""
    if rows:
        with transaction(conn):
            conn.executemany(
                "INSERT INTO run_system (run_id, t, cpu_percent, rss_mb, gpu_percent, "
                "gpu_mem_mb) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )


def system_since(conn: sqlite3.Connection, run_id: int, after_id: int = 0) -> list[SystemPoint]:
    """System samples of a run with ``id > after_id``, oldest first."""
    rows = conn.execute(
        "SELECT id, run_id, t, cpu_percent, rss_mb, gpu_percent, gpu_mem_mb FROM run_system "
        "WHERE run_id = ? AND id > ? ORDER BY id",
        (run_id, after_id),
    ).fetchall()
    return [SystemPoint(*r) for r in rows]


def save_checkpoint(
    conn: sqlite3.Connection, run_id: int, kind: str, epoch: int, state: bytes
) -> None:
    """Store (replace) the run's ``best`` or ``last`` checkpoint."""
    with transaction(conn):
        conn.execute(
            "INSERT OR REPLACE INTO checkpoints (run_id, kind, epoch, state, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (run_id, kind, epoch, state, time.time()),
        )


def load_checkpoint(conn: sqlite3.Connection, run_id: int, kind: str) -> tuple[int, bytes]:
    """``(epoch, state bytes)`` of a checkpoint. Raises NotFoundError."""
    row = conn.execute(
        "SELECT epoch, state FROM checkpoints WHERE run_id = ? AND kind = ?", (run_id, kind)
    ).fetchone()
    if row is None:
        raise NotFoundError(f"run {run_id} has no {kind} checkpoint")
    return int(row[0]), bytes(row[1])


def drop_checkpoints(conn: sqlite3.Connection, run_id: int) -> int:
    """Delete a run's checkpoints (the large blobs); return how many."""
    with transaction(conn):
        return conn.execute("DELETE FROM checkpoints WHERE run_id = ?", (run_id,)).rowcount


def delete(conn: sqlite3.Connection, run_id: int) -> None:
    """Delete a run with its metrics, samples and checkpoints (the blobs it owns)."""
    with transaction(conn):
        cur = conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
    if cur.rowcount == 0:
        raise NotFoundError(f"no run {run_id}")


def interrupt_orphans(conn: sqlite3.Connection) -> int:
    """Mark ``interrupted`` every unfinished run whose job is no longer queued or running.

    That covers a worker killed mid-run, a job cancelled before its worker started,
    and a worker that could not start; each run stays resumable from its checkpoint.
    """
    with transaction(conn):
        cur = conn.execute(
            "UPDATE runs SET status = 'interrupted', control = NULL, finished_at = ?, "
            "error = COALESCE((SELECT CASE j.status WHEN 'cancelled' THEN 'cancelled before "
            "it finished' ELSE 'the worker stopped unexpectedly' END FROM jobs j "
            "WHERE j.id = runs.job_id), 'the worker stopped unexpectedly') "
            "WHERE status IN ('queued', 'running', 'paused') AND NOT EXISTS (SELECT 1 FROM "
            "jobs j WHERE j.id = runs.job_id AND j.status IN ('queued', 'running'))",
            (time.time(),),
        )
    return cur.rowcount
