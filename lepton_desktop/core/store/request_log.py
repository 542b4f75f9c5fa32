"""Browsing, exporting and trimming the request log (SQL only here).

Every read is a keyset page: rows below (or above) a known ``id`` in index order, at
most ``limit`` of them, so the first page of ten million rows costs what the first page
of ten does, and an export walks the log in bounded chunks. Retention deletes the
oldest rows in short transactions; the rollups (:mod:`.rollups`), drift sketches and
anomaly flags keep their history, as a Prometheus server keeps its series after the
raw events are gone.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator
from typing import Any

from lepton_desktop.core.entities import RequestRecord
from lepton_desktop.core.store.db import transaction
from lepton_desktop.core.store.serving import REQUEST_COLUMNS, request_record

#: Status filters by class, as the GUI and ``--status`` name them.
STATUS_CLASSES = {"2xx": (200, 299), "4xx": (400, 499), "5xx": (500, 599), "error": (400, 599)}


@dataclasses.dataclass(frozen=True)
class RequestFilter:
    """Which logged requests to show, export or replay (every field optional).

    Attributes:
        model: the model name that answered.
        version: its version number (with ``model``).
        status: a status code (``404``) or class (``2xx``, ``4xx``, ``5xx``, ``error``).
        since: requests at or after this Unix time; until: before it.
        anomalous: only requests the log's writer flagged (out of range, unseen, ...).
        has_feedback: True only labelled requests, False only unlabelled ones.
        deployment_id: one server's requests.
    """

    model: str | None = None
    version: int | None = None
    status: int | str | None = None
    since: float | None = None
    until: float | None = None
    anomalous: bool = False
    has_feedback: bool | None = None
    deployment_id: int | None = None

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition on ``r`` (the request log) and its arguments."""
        clauses: list[str] = []
        args: list[Any] = []
        for column, value in (("model", self.model), ("version", self.version),
                              ("deployment_id", self.deployment_id)):  # fmt: skip
            if value is not None:
                clauses.append(f"r.{column} = ?")
                args.append(value)
        if isinstance(self.status, str):
            low, high = STATUS_CLASSES[self.status]
            clauses.append("r.status BETWEEN ? AND ?")
            args += [low, high]
        elif self.status is not None:
            clauses.append("r.status = ?")
            args.append(self.status)
        if self.since is not None:
            clauses.append("r.ts >= ?")
            args.append(self.since)
        if self.until is not None:
            clauses.append("r.ts < ?")
            args.append(self.until)
        if self.anomalous:
            clauses.append("EXISTS (SELECT 1 FROM request_anomalies a WHERE a.log_id = r.id)")
        if self.has_feedback is not None:
            negation = "" if self.has_feedback else "NOT "
            clauses.append(
                f"{negation}EXISTS (SELECT 1 FROM feedback f WHERE f.request_id = r.request_id)"
            )
        return (" AND ".join(clauses) or "1"), args


_COLUMNS = ", ".join(f"r.{c}" for c in REQUEST_COLUMNS.split(", "))


def page(
    conn: sqlite3.Connection, flt: RequestFilter, before_id: int | None = None, limit: int = 100
) -> list[RequestRecord]:
    """The newest ``limit`` requests matching ``flt`` with an id below ``before_id``,
    newest first (the next page starts below the last row's id)."""
    where, args = flt.where()
    if before_id is not None:
        where += " AND r.id < ?"
        args.append(before_id)
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM request_log r WHERE {where} ORDER BY r.id DESC LIMIT ?",
        (*args, limit),
    )
    return [request_record(row) for row in rows]


def chunks(
    conn: sqlite3.Connection, flt: RequestFilter, chunk: int = 5000, limit: int | None = None
) -> Iterator[list[RequestRecord]]:
    """Every request matching ``flt`` (at most ``limit``), oldest first, ``chunk`` rows
    at a time: one keyset query per chunk, so memory holds one chunk whatever the log's
    size. Each chunk is read in its own statement: writers go on meanwhile."""
    where, args = flt.where()
    after, left = 0, limit
    while left is None or left > 0:
        size = chunk if left is None else min(chunk, left)
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM request_log r WHERE {where} AND r.id > ? "
            "ORDER BY r.id LIMIT ?",
            (*args, after, size),
        ).fetchall()
        if not rows:
            return
        yield [request_record(row) for row in rows]
        after = rows[-1][0]
        if left is not None:
            left -= len(rows)


def raw_chunks(
    conn: sqlite3.Connection, flt: RequestFilter, chunk: int = 5000
) -> Iterator[list[tuple[Any, ...]]]:
    """Like :func:`chunks`, the rows as stored (``REQUEST_COLUMNS`` order, inputs and
    outputs as their JSON text) plus the request's labels as a JSON object text
    (``{"row": label}``, the newest per row; None when unlabelled): what an export
    writes, without decoding and encoding every row's JSON again."""
    where, args = flt.where()
    after = 0
    while True:
        rows = conn.execute(
            f"SELECT {_COLUMNS}, (SELECT json_group_object(f.row, json(f.label)) FROM "
            "(SELECT row, label FROM feedback WHERE request_id = r.request_id ORDER BY id) f)"
            f" FROM request_log r WHERE {where} AND r.id > ? ORDER BY r.id LIMIT ?",
            (*args, after, chunk),
        ).fetchall()
        if not rows:
            return
        yield rows
        after = rows[-1][0]


def count(conn: sqlite3.Connection, flt: RequestFilter, cap: int) -> int:
    """How many requests match ``flt``, counting no further than ``cap`` (a bound, so a
    filter over millions of rows answers in bounded time)."""
    where, args = flt.where()
    return int(
        conn.execute(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM request_log r WHERE {where} LIMIT ?)",
            (*args, cap),
        ).fetchone()[0]
    )


def labels_of(conn: sqlite3.Connection, request_ids: list[str]) -> dict[str, dict[int, Any]]:
    """The newest label of each labelled row of these requests: id -> row -> label."""
    labels: dict[str, dict[int, Any]] = {}
    for start in range(0, len(request_ids), 500):
        part = request_ids[start : start + 500]
        marks = ", ".join("?" * len(part))
        for request_id, row, label in conn.execute(
            f"SELECT request_id, row, label FROM feedback WHERE request_id IN ({marks}) "
            "ORDER BY id",
            part,
        ):
            labels.setdefault(request_id, {})[row] = json.loads(label)
    return labels


# -- retention --------------------------------------------------------------------------


def retention(conn: sqlite3.Connection) -> tuple[float | None, int | None]:
    """The project's retention: ``(days, rows)`` (``None`` each when not limited)."""
    row = conn.execute("SELECT days, max_rows FROM request_log_retention WHERE id = 1").fetchone()
    return (row[0], row[1]) if row else (None, None)


def set_retention(conn: sqlite3.Connection, days: float | None, rows: int | None) -> None:
    """Keep requests for ``days`` and/or the newest ``rows`` (``None`` both: keep all)."""
    with transaction(conn):
        conn.execute(
            "INSERT INTO request_log_retention (id, days, max_rows) VALUES (1, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET days = excluded.days, max_rows = excluded.max_rows",
            (days, rows),
        )


def retention_cutoff(conn: sqlite3.Connection, before_ts: float | None, keep_rows: int | None
                     ) -> int:  # fmt: skip
    """The first request-log id to keep: rows below it are older than ``before_ts`` or
    beyond the newest ``keep_rows`` (0: nothing to delete). Ids grow with the shipping
    order, so "older" is "a smaller id" for rows shipped in time order; a row shipped
    late (a killed server's journal) is judged by the rows around it."""
    cutoff = 0
    if keep_rows is not None:
        row = conn.execute(
            "SELECT id FROM request_log ORDER BY id DESC LIMIT 1 OFFSET ?", (keep_rows,)
        ).fetchone()
        if row is not None:
            cutoff = row[0] + 1
    if before_ts is not None:
        row = conn.execute(
            "SELECT MIN(id) FROM request_log WHERE ts >= ?", (before_ts,)
        ).fetchone()
        newest = conn.execute("SELECT MAX(id) FROM request_log").fetchone()[0] or 0
        cutoff = max(cutoff, row[0] if row[0] is not None else newest + 1)
    return cutoff


def delete_batch(conn: sqlite3.Connection, cutoff: int, batch: int) -> int:
    """Delete the oldest ``batch`` requests below id ``cutoff`` in one transaction (their
    feedback and anomaly flags stay: they are the quality and anomaly history); return
    how many went."""
    with transaction(conn):
        ids = conn.execute(
            "SELECT id FROM request_log WHERE id < ? ORDER BY id LIMIT ?", (cutoff, batch)
        ).fetchall()
        if ids:
            conn.execute(
                "DELETE FROM request_log WHERE id BETWEEN ? AND ?", (ids[0][0], ids[-1][0])
            )
    return len(ids)


def oldest_id(conn: sqlite3.Connection) -> int | None:
    """The smallest request-log id (None when the log is empty)."""
    row = conn.execute("SELECT id FROM request_log ORDER BY id LIMIT 1").fetchone()
    return row[0] if row else None


# -- deployments ------------------------------------------------------------------------


def delete_deployment(conn: sqlite3.Connection, deployment_id: int, keep_log: bool) -> int:
    """Delete a deployment's record; with ``keep_log`` False its requests and feedback
    too (the rollups keep their history). A kept log keeps the deployment's number (no
    foreign key since m006), so its rows still say which server answered. Returns the
    request rows deleted."""
    with transaction(conn):
        deleted = 0
        if not keep_log:
            deleted = conn.execute(
                "DELETE FROM request_log WHERE deployment_id = ?", (deployment_id,)
            ).rowcount
            conn.execute("DELETE FROM feedback WHERE deployment_id = ?", (deployment_id,))
        conn.execute("DELETE FROM deployments WHERE id = ?", (deployment_id,))
    return deleted


# -- candidates -------------------------------------------------------------------------

#: What a shadow row's request id adds to the id of the request it copies, before the
#: candidate's version (see core/serving/candidates.py).
SHADOW_SUFFIX = "-shadow-"


def shadow_id(request_id: str, version: int) -> str:
    """The request id of a candidate's shadow answer to ``request_id``."""
    return f"{request_id}{SHADOW_SUFFIX}{version}"


def shadow_pairs(
    conn: sqlite3.Connection, model: str, answered_by: int, candidate: int, suffix: str,
    limit: int,
) -> list[tuple[str, float, Any, float, Any, int]]:  # fmt: skip
    """The newest ``limit`` requests ``answered_by`` answered and ``candidate`` shadowed:
    ``(request_id, latency_ms, outputs, shadow_latency_ms, shadow_outputs, shadow_status)``
    (outputs decoded). ``suffix``: what the shadow row's id adds to the request's."""
    rows = conn.execute(
        "SELECT r.request_id, r.latency_ms, r.outputs, s.latency_ms, s.outputs, s.status "
        "FROM request_log s JOIN request_log r "
        "ON r.request_id = substr(s.request_id, 1, length(s.request_id) - ?) "
        "WHERE s.model = ? AND s.version = ? AND s.protocol = 'shadow' AND r.version = ? "
        "AND r.status = 200 ORDER BY s.id DESC LIMIT ?",
        (len(suffix), model, candidate, answered_by, limit),
    ).fetchall()
    return [(rid, lat, _decoded(out), s_lat, _decoded(s_out), status)
            for rid, lat, out, s_lat, s_out, status in rows]  # fmt: skip


def _decoded(text: str | None) -> Any:
    return json.loads(text) if text else None


def labelled_inputs(conn: sqlite3.Connection, model: str, limit: int
                    ) -> list[tuple[str, int, str, str]]:  # fmt: skip
    """The newest label of each labelled row ``model`` answered with captured inputs:
    ``(request_id, row, inputs JSON, label JSON)``, oldest first, at most ``limit``."""
    rows = conn.execute(
        "SELECT f.request_id, f.row, r.inputs, f.label FROM feedback f "
        "JOIN request_log r ON r.request_id = f.request_id "
        "WHERE f.model = ? AND f.superseded = 0 AND r.status = 200 AND r.inputs IS NOT NULL "
        "ORDER BY f.id DESC LIMIT ?",
        (model, limit),
    ).fetchall()
    return rows[::-1]
