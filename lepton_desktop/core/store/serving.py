"""Deployments of the local server, its request log and feedback (SQL only here).

The request log is written by the journal shipper in batches (one transaction per
batch, never one per request, the batch's rollups, drift sketches and anomaly flags in
the same transaction), and read
by the GUI incrementally (``id > last_seen``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lepton_desktop.core.entities import Deployment, RequestRecord
from lepton_desktop.core.errors import NotFoundError
from lepton_desktop.core.store import drift, rollups
from lepton_desktop.core.store.db import transaction

_DEPLOYMENT_COLUMNS = (
    "id, job_id, host, port, url, token, status, models, loaded, options, error, pid, "
    "created_at, started_at, stopped_at"
)
_JSON_FIELDS = ("models", "loaded", "options")
_UPDATABLE = {
    "job_id", "host", "port", "url", "token", "status", "models", "loaded", "options",
    "error", "pid", "started_at", "stopped_at",
}  # fmt: skip
_REQUEST_COLUMNS = (
    "id, deployment_id, ts, request_id, method, path, protocol, model, version, status, "
    "latency_ms, n_rows, inputs, outputs, error"
)
_REQUEST_FIELDS = _REQUEST_COLUMNS.split(", ")[1:]


def _deployment(row: tuple[Any, ...]) -> Deployment:
    return Deployment(
        id=row[0],
        job_id=row[1],
        host=row[2],
        port=row[3],
        url=row[4],
        token=row[5],
        status=row[6],
        models=json.loads(row[7]),
        loaded=json.loads(row[8]),
        options=json.loads(row[9]),
        error=row[10],
        pid=row[11],
        created_at=row[12],
        started_at=row[13],
        stopped_at=row[14],
    )


def create_deployment(
    conn: sqlite3.Connection,
    *,
    host: str,
    port: int,
    token: str | None,
    models: list[str],
    options: Mapping[str, Any],
) -> int:
    """Record a deployment about to be started; return its id."""
    with transaction(conn):
        cur = conn.execute(
            "INSERT INTO deployments (host, port, token, models, options, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (host, port, token, json.dumps(models), json.dumps(dict(options)), time.time()),
        )
    return int(cur.lastrowid or 0)


def get_deployment(conn: sqlite3.Connection, deployment_id: int) -> Deployment:
    """One deployment. Raises NotFoundError."""
    row = conn.execute(
        f"SELECT {_DEPLOYMENT_COLUMNS} FROM deployments WHERE id = ?", (deployment_id,)
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no deployment {deployment_id}")
    return _deployment(row)


def list_deployments(conn: sqlite3.Connection, limit: int = 100) -> list[Deployment]:
    """Deployments, newest first."""
    rows = conn.execute(
        f"SELECT {_DEPLOYMENT_COLUMNS} FROM deployments ORDER BY id DESC LIMIT ?", (limit,)
    )
    return [_deployment(r) for r in rows]


def update_deployment(conn: sqlite3.Connection, deployment_id: int, **fields: Any) -> None:
    """Set some fields (JSON fields are encoded here)."""
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"cannot update deployment fields {sorted(unknown)}")
    values = [json.dumps(v) if k in _JSON_FIELDS else v for k, v in fields.items()]
    assignments = ", ".join(f"{name} = ?" for name in fields)
    with transaction(conn):
        conn.execute(
            f"UPDATE deployments SET {assignments} WHERE id = ?", (*values, deployment_id)
        )


def add_requests(conn: sqlite3.Connection, rows: Iterable[Mapping[str, Any]]) -> int:
    """Append request records in one transaction; return how many.

    Each row maps the request-log field names (``deployment_id``, ``ts``, ``request_id``,
    ``method``, ``path``, ``protocol``, ``model``, ``version``, ``status``,
    ``latency_ms``, ``n_rows``, ``inputs``, ``outputs``, ``error``) to values; ``inputs``
    and ``outputs`` that are not already text are stored as JSON.
    """
    values = [tuple(_request_value(row, f) for f in _REQUEST_FIELDS) for row in rows]
    if not values:
        return 0
    placeholders = ", ".join("?" * len(_REQUEST_FIELDS))
    with transaction(conn):
        after = rollups.last_id(conn)
        conn.executemany(
            f"INSERT INTO request_log ({', '.join(_REQUEST_FIELDS)}) VALUES ({placeholders})",
            values,
        )
        rollups.roll_up(conn, after)
        drift.roll_up(conn, after)
    return len(values)


def ship_journal(
    conn: sqlite3.Connection,
    requests: Sequence[tuple[Any, ...]],
    feedback: Sequence[tuple[Any, ...]],
) -> int:
    """Store request rows (in ``_REQUEST_FIELDS`` order) and feedback rows
    (``deployment_id, request_id, ts, label, row``) from a server's journal, in one
    transaction. A row stored before (the same request id; the same request, row and
    time for feedback) is skipped, so shipping twice stores once. Returns the request
    rows stored.
    """
    if not requests and not feedback:
        return 0
    placeholders = ", ".join("?" * len(_REQUEST_FIELDS))
    with transaction(conn):
        before, after = conn.total_changes, rollups.last_id(conn)
        after_feedback = rollups.last_id(conn, "feedback")
        conn.executemany(
            f"INSERT OR IGNORE INTO request_log ({', '.join(_REQUEST_FIELDS)}) "
            f"VALUES ({placeholders})",
            requests,
        )
        stored = conn.total_changes - before
        if stored:
            rollups.roll_up(conn, after)
            drift.roll_up(conn, after)
        conn.executemany(_INSERT_FEEDBACK.replace("INSERT", "INSERT OR IGNORE", 1), feedback)
        rollups.resolve_feedback(conn, after_feedback, after)
    return stored


_REQUEST_DEFAULTS: dict[str, Any] = {"protocol": "other", "n_rows": 0}


def _request_value(row: Mapping[str, Any], field: str) -> Any:
    value = row.get(field, _REQUEST_DEFAULTS.get(field))
    if field in ("inputs", "outputs") and value is not None and not isinstance(value, str):
        return json.dumps(value)
    return value


def _request(row: tuple[Any, ...]) -> RequestRecord:
    fields = list(row)
    fields[12:14] = [json.loads(text) if text is not None else None for text in row[12:14]]
    return RequestRecord(*fields)


def requests_since(
    conn: sqlite3.Connection, deployment_id: int | None, after_id: int = 0, limit: int = 1000
) -> list[RequestRecord]:
    """Requests logged after ``after_id`` (all deployments when ``deployment_id`` is None)."""
    where, args = "id > ?", [after_id]
    if deployment_id is not None:
        where += " AND deployment_id = ?"
        args.append(deployment_id)
    rows = conn.execute(
        f"SELECT {_REQUEST_COLUMNS} FROM request_log WHERE {where} ORDER BY id LIMIT ?",
        (*args, limit),
    )
    return [_request(r) for r in rows]


def request_count(conn: sqlite3.Connection, deployment_id: int | None = None) -> int:
    """How many requests were logged (by one deployment, or in all)."""
    if deployment_id is None:
        return int(conn.execute("SELECT COUNT(*) FROM request_log").fetchone()[0])
    return int(
        conn.execute(
            "SELECT COUNT(*) FROM request_log WHERE deployment_id = ?", (deployment_id,)
        ).fetchone()[0]
    )


def find_request(conn: sqlite3.Connection, request_id: str) -> RequestRecord | None:
    """The logged request with this id, if the writer has stored it."""
    row = conn.execute(
        f"SELECT {_REQUEST_COLUMNS} FROM request_log WHERE request_id = ? LIMIT 1",
        (request_id,),
    ).fetchone()
    return _request(row) if row else None


_INSERT_FEEDBACK = (
    "INSERT INTO feedback (deployment_id, request_id, ts, label, row) VALUES (?, ?, ?, ?, ?)"
)


def add_feedback(
    conn: sqlite3.Connection,
    deployment_id: int | None,
    request_id: str,
    label: Any,
    row: int = 0,
) -> int:
    """Store the true label of row ``row`` of request ``request_id``; return its id."""
    with transaction(conn):
        after = rollups.last_id(conn, "feedback")
        cur = conn.execute(
            _INSERT_FEEDBACK, (deployment_id, request_id, time.time(), json.dumps(label), row)
        )
        rollups.resolve_feedback(conn, after, rollups.last_id(conn))
    return int(cur.lastrowid or 0)


def add_feedbacks(
    conn: sqlite3.Connection, deployment_id: int | None, items: Iterable[tuple[str, Any, int]]
) -> int:
    """Store ``(request_id, label, row)`` labels in one transaction; return how many."""
    now = time.time()
    values = [(deployment_id, rid, now, json.dumps(label), row) for rid, label, row in items]
    if values:
        with transaction(conn):
            after = rollups.last_id(conn, "feedback")
            conn.executemany(_INSERT_FEEDBACK, values)
            rollups.resolve_feedback(conn, after, rollups.last_id(conn))
    return len(values)


def feedback_for(conn: sqlite3.Connection, request_id: str) -> list[tuple[int, Any]]:
    """``(row, label)`` pairs given for one request."""
    rows = conn.execute(
        "SELECT row, label FROM feedback WHERE request_id = ? ORDER BY id", (request_id,)
    )
    return [(r[0], json.loads(r[1])) for r in rows]


def interrupt_orphans(conn: sqlite3.Connection) -> None:
    """Active deployments whose worker job has ended (killed, cancelled) -> interrupted."""
    with transaction(conn):
        conn.execute(
            "UPDATE deployments SET status = 'interrupted', stopped_at = ? "
            "WHERE status IN ('queued', 'starting', 'running') AND job_id IN "
            "(SELECT id FROM jobs WHERE status NOT IN ('queued', 'running'))",
            (time.time(),),
        )
