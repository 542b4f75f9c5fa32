"""Tuning studies: our link table, and read-only counts from Optuna's own tables.

``tuning_studies`` records what each study searches (dataset, architecture, space,
objectives) and how it went (status, best trial, the registered best model). The
trials are Optuna's: they live in Optuna's tables, in this file (``studies``,
``trials``, ...) or in an external storage. This module only reads Optuna's tables
(:func:`trial_counts`); Optuna alone writes them, with one exception:
:func:`fail_orphan_trials` fails the trials a dead worker left ``RUNNING``, as
Optuna's heartbeat would (a grace period later, and only when a study runs again).
"""

from __future__ import annotations

import datetime
import json
import os
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from lepton_desktop.core.entities import Study
from lepton_desktop.core.errors import NotFoundError
from lepton_desktop.core.store import optuna_trials
from lepton_desktop.core.store.db import transaction

_COLUMNS = (
    "s.id, s.name, s.optuna_study_id, s.dataset_ref, s.dataset_version_id, s.arch, s.sampler, "
    "s.pruner, s.metric, s.objectives, s.directions, s.space, s.options, s.n_trials, s.jobs, "
    "s.storage, s.status, s.best_value, s.best_params, s.best_trial, "
    "m.name || ':' || v.version, s.job_id, s.error, s.created_at, s.finished_at"
)
_FROM = (
    "FROM tuning_studies s LEFT JOIN model_versions v ON v.id = s.best_model_id "
    "LEFT JOIN models m ON m.id = v.model_id"
)
_JSON = {"objectives", "directions", "space", "options", "best_params"}
_UPDATABLE = {
    "optuna_study_id",
    "status",
    "best_value",
    "best_params",
    "best_trial",
    "best_model_id",
    "job_id",
    "error",
    "finished_at",
    "n_trials",
    "jobs",
}
#: A finalizing process that has not finished after this long is presumed dead.
LEASE_S = 900.0


def _study(row: Sequence[Any]) -> Study:
    values = list(row)
    for index in (9, 10, 11, 12):
        values[index] = json.loads(values[index])
    values[18] = json.loads(values[18]) if values[18] else None
    return Study(*values)


def create(
    conn: sqlite3.Connection,
    *,
    name: str,
    optuna_study_id: int | None,
    storage: str | None,
    dataset_version_id: int,
    dataset_ref: str,
    arch: str,
    sampler: str,
    pruner: str,
    objectives: list[str],
    directions: list[str],
    space: dict[str, Any],
    options: dict[str, Any],
    n_trials: int,
    jobs: int,
) -> int:
    """Insert a study (status ``created``); return its id."""
    with transaction(conn):
        cur = conn.execute(
            "INSERT INTO tuning_studies (name, optuna_study_id, storage, dataset_version_id, "
            "dataset_ref, arch, sampler, pruner, metric, objectives, directions, space, "
            "options, n_trials, jobs, status, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'created', ?)",
            (
                name,
                optuna_study_id,
                storage,
                dataset_version_id,
                dataset_ref,
                arch,
                sampler,
                pruner,
                objectives[0],
                json.dumps(objectives),
                json.dumps(directions),
                json.dumps(space),
                json.dumps(options),
                n_trials,
                jobs,
                time.time(),
            ),
        )
    return int(cur.lastrowid or 0)


def get(conn: sqlite3.Connection, name: str) -> Study:
    """One study by name. Raises NotFoundError."""
    row = conn.execute(f"SELECT {_COLUMNS} {_FROM} WHERE s.name = ?", (name,)).fetchone()
    if row is None:
        raise NotFoundError(f"no study {name!r}")
    return _study(row)


def exists(conn: sqlite3.Connection, name: str) -> bool:
    """Whether a study of that name is recorded."""
    return (
        conn.execute("SELECT 1 FROM tuning_studies WHERE name = ?", (name,)).fetchone() is not None
    )


def list_studies(conn: sqlite3.Connection) -> list[Study]:
    """Every study, newest first."""
    return [_study(r) for r in conn.execute(f"SELECT {_COLUMNS} {_FROM} ORDER BY s.id DESC")]


def update(conn: sqlite3.Connection, name: str, **fields: Any) -> None:
    """Set some of a study's columns (status, best_*, job_id, error, ...)."""
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"not tuning_studies columns: {sorted(unknown)}")
    values = [json.dumps(v) if k in _JSON and v is not None else v for k, v in fields.items()]
    assignments = ", ".join(f"{k} = ?" for k in fields)
    with transaction(conn):
        conn.execute(f"UPDATE tuning_studies SET {assignments} WHERE name = ?", (*values, name))


def claim_finalize(conn: sqlite3.Connection, name: str) -> bool:
    """Take the right to copy and register a study's result; False if another has it.

    Several processes may end one shared study at the same moment (``tune`` on
    several machines, or twice on one project); one of them at a time copies the
    study into the file and registers its model.
    """
    now = time.time()
    with transaction(conn):
        cur = conn.execute(
            "UPDATE tuning_studies SET finalizing_pid = ?, finalizing_at = ? WHERE name = ? "
            "AND (finalizing_pid IS NULL OR finalizing_at < ?)",
            (os.getpid(), now, name, now - LEASE_S),
        )
    return cur.rowcount == 1


def release_finalize(conn: sqlite3.Connection, name: str, pid: int | None = None) -> None:
    """Give the finalize right back (``pid``: take it from a process that died)."""
    with transaction(conn):
        conn.execute(
            "UPDATE tuning_studies SET finalizing_pid = NULL, finalizing_at = NULL "
            "WHERE name = ? AND finalizing_pid = ?",
            (name, os.getpid() if pid is None else pid),
        )


def finalizer(conn: sqlite3.Connection, name: str) -> int | None:
    """The process holding the finalize right, if any."""
    row = conn.execute(
        "SELECT finalizing_pid FROM tuning_studies WHERE name = ?", (name,)
    ).fetchone()
    return row[0] if row else None


def stop_orphans(conn: sqlite3.Connection) -> int:
    """Mark ``stopped`` the running studies whose tune job is no longer running.

    That covers a tune worker killed or cancelled before it could say so itself;
    such a study can be resumed (queued again).
    """
    orphans = conn.execute(
        "SELECT name FROM tuning_studies s WHERE status = 'running' AND NOT EXISTS "
        "(SELECT 1 FROM jobs j WHERE j.id = s.job_id AND j.status IN ('queued', 'running'))"
    ).fetchall()
    if not orphans:
        return 0  # no write transaction on every open
    with transaction(conn):
        for (name,) in orphans:
            conn.execute(
                "UPDATE tuning_studies SET status = 'stopped', error = COALESCE(error, "
                "'the tune worker stopped unexpectedly') WHERE name = ? AND status = 'running'",
                (name,),
            )
    return len(orphans)


def fail_orphan_trials(conn: sqlite3.Connection) -> int:
    """Fail the ``RUNNING`` trials of this file's studies that no live job runs.

    Every trial of a study kept in the project file runs in a ``tune`` or ``trial``
    job; once every job of the study has ended (recovery has marked the dead ones),
    a trial still ``RUNNING`` belongs to a killed process. Optuna's heartbeat fails
    such a trial only a grace period later, and only when a process of the study
    looks; until then the study shows work nobody does. Set ``FAIL`` as Optuna's
    heartbeat would (state and completion time, in Optuna's formats). Returns how
    many trials were failed (no write transaction when none).
    """
    if not optuna_trials.has_studies(conn):
        return 0
    orphans = [
        r[0]
        for r in conn.execute(
            "SELECT t.trial_id FROM trials t JOIN tuning_studies s "
            "ON s.optuna_study_id = t.study_id AND s.storage IS NULL "
            "WHERE t.state = 'RUNNING' AND NOT EXISTS (SELECT 1 FROM jobs j "
            "WHERE j.status IN ('queued', 'running') AND j.kind IN ('tune', 'trial') "
            "AND json_extract(j.args, '$.study') = s.name)"
        )
    ]
    if not orphans:
        return 0
    # Optuna keeps naive local datetimes as SQLAlchemy writes them.
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")
    with transaction(conn):
        conn.executemany(
            "UPDATE trials SET state = 'FAIL', datetime_complete = ? "
            "WHERE trial_id = ? AND state = 'RUNNING'",
            [(now, trial_id) for trial_id in orphans],
        )
    return len(orphans)


def trial_counts(conn: sqlite3.Connection, optuna_study_id: int | None) -> dict[str, int]:
    """Trials per state (``COMPLETE``, ``PRUNED``, ...) of a study in this file's Optuna
    tables (read with plain SQL: no Optuna import for ``info``)."""
    if optuna_study_id is None:
        return {}
    return optuna_trials.state_counts(conn, optuna_study_id)
