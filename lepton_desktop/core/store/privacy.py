"""Forgetting served requests and writing a copy for sharing (SQL only here).

Both rely on ``PRAGMA secure_delete = ON``, which every writing connection sets
(:func:`~lepton_desktop.core.store.db.connect`): SQLite overwrites deleted content
with zeros instead of leaving it in free pages. Two more places keep old bytes, and
both are dealt with here: the full-text index of the request log (FTS5 deletes by
adding "delete" markers to new segments; ``optimize`` merges them away) and the WAL
(checkpointed and truncated after the work).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lepton_desktop.core.store.db import checkpoint, transaction

#: Requests per transaction when forgetting: a server's log writer waits at most for
#: one such batch.
FORGET_BATCH = 500


def find_requests(
    conn: sqlite3.Connection,
    *,
    request_id: str | None = None,
    since: float | None = None,
    until: float | None = None,
    model: str | None = None,
) -> list[tuple[int, str]]:
    """``(log id, request id)`` of the logged requests matching, oldest first."""
    clauses, params = _where(request_id, since, until, model)
    return [
        (int(row[0]), str(row[1]))
        for row in conn.execute(
            f"SELECT id, request_id FROM request_log WHERE {clauses} ORDER BY id", params
        )
    ]


def _where(
    request_id: str | None, since: float | None, until: float | None, model: str | None
) -> tuple[str, list[Any]]:
    clauses, params = ["1"], []
    for sql, value in (("request_id = ?", request_id), ("ts >= ?", since), ("ts < ?", until),
                       ("model = ?", model)):  # fmt: skip
        if value is not None:
            clauses.append(sql)
            params.append(value)
    return " AND ".join(clauses), params


def forget_batch(conn: sqlite3.Connection, requests: Sequence[tuple[int, str]]) -> tuple[int, int]:
    """Clear the captured inputs and outputs of ``requests``; delete their feedback.

    One transaction. The log rows stay (time, status, latency, model), so request
    counts, rollups and drift sketches still add up; live quality is read from the
    feedback that is left. Returns ``(requests cleared, feedback rows deleted)``.
    """
    ids = [log_id for log_id, _ in requests]
    request_ids = [request_id for _, request_id in requests]
    marks = ",".join("?" * len(ids))
    with transaction(conn):
        cleared = conn.execute(
            f"UPDATE request_log SET inputs = NULL, outputs = NULL WHERE id IN ({marks}) "
            "AND (inputs IS NOT NULL OR outputs IS NOT NULL)",
            ids,
        ).rowcount
        deleted = conn.execute(
            f"DELETE FROM feedback WHERE request_id IN ({marks})", request_ids
        ).rowcount
    return cleared, deleted


def purge_leftovers(conn: sqlite3.Connection) -> None:
    """Merge the request log's search index (dropping deleted tokens) and empty the WAL."""
    with transaction(conn):
        conn.execute("INSERT INTO request_log_fts (request_log_fts) VALUES ('optimize')")
    checkpoint(conn)


# -- a copy for sharing --------------------------------------------------------------------


def copy_into(conn: sqlite3.Connection, target: Path) -> None:
    """``VACUUM INTO target``: a compact, consistent copy of the whole project."""
    conn.execute("VACUUM INTO ?", (str(target),))


def strip_copy(conn: sqlite3.Connection, *, without_data: bool) -> dict[str, int]:
    """Remove what must not travel from a copy (one transaction); return what was removed.

    Request inputs and outputs, feedback, and the served values named in drift
    sketches (unseen categories); with ``without_data`` the rows of every dataset
    version too (their versions, columns and statistics stay).
    """
    left_out: dict[str, int] = {}
    with transaction(conn):
        left_out["request_inputs"] = _scalar(
            conn, "SELECT COUNT(*) FROM request_log WHERE inputs IS NOT NULL"
        )
        left_out["request_outputs"] = _scalar(
            conn, "SELECT COUNT(*) FROM request_log WHERE outputs IS NOT NULL"
        )
        conn.execute(
            "UPDATE request_log SET inputs = NULL, outputs = NULL "
            "WHERE inputs IS NOT NULL OR outputs IS NOT NULL"
        )
        left_out["feedback"] = conn.execute("DELETE FROM feedback").rowcount
        left_out["served_values_named_in_drift"] = sum(
            conn.execute(f"UPDATE drift_{grain} SET unseen = NULL WHERE unseen IS NOT NULL")
            .rowcount
            for grain in ("minutes", "hours")
        )
        if without_data:
            left_out["dataset_rows"] = _delete_dataset_rows(conn)
        conn.execute("INSERT INTO request_log_fts (request_log_fts) VALUES ('rebuild')")
    return left_out


def _delete_dataset_rows(conn: sqlite3.Connection) -> int:
    removed = 0
    for (version_id,) in conn.execute("SELECT id FROM dataset_versions").fetchall():
        table = f"ds_{int(version_id)}"
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        if exists:
            removed += conn.execute(f"DELETE FROM {table}").rowcount
    conn.execute(
        "INSERT INTO lepton_meta (key, value) VALUES ('shared_without_data', '1') "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
    )
    return removed


def vacuum(conn: sqlite3.Connection) -> None:
    """Rebuild the file from its live content only (no free pages, no old bytes)."""
    conn.execute("VACUUM")
    checkpoint(conn)


def _scalar(conn: sqlite3.Connection, sql: str) -> int:
    return int(conn.execute(sql).fetchone()[0])
