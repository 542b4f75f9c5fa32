"""Reads behind the Monitoring tab and ``monitor`` (SQL only here).

Traffic comes from the rollups the log's writers keep beside it (per minute and per
hour; see :mod:`.rollups`), so a window of any length costs at most bins x buckets
rows, never a scan of the log. Quality comes
from feedback resolved against the answers it labels when it was written, kept per
minute (a confusion matrix, or error sums) by triggers (:mod:`.quality_rollups`), so a
window over a million labels reads its whole minutes' rows and two partial minutes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from lepton_desktop.core.store import quality_rollups, rollups
from lepton_desktop.core.store.db import transaction


def _filter(model: str | None, version: int | None) -> tuple[str, tuple[Any, ...]]:
    """SQL and arguments choosing ``model`` and ``version``.

    Model ``None`` is every served model, ``''`` the requests no model answered
    (feedback, ``/metrics``, an unknown model, a refused token); version ``None`` (or 0)
    is every version. Plain equalities, so that SQLite seeks the indexes that start
    with the model.
    """
    where, args = ("model != ''", ()) if model is None else ("model = ?", (model,))
    if version:
        where, args = f"{where} AND version = ?", (*args, version)
    return where, args


def served_models(conn: sqlite3.Connection) -> list[tuple[str, int, int, int, int]]:
    """Every ``(model, version, requests, first_minute, last_minute)`` ever logged."""
    return conn.execute(
        "SELECT model, version, requests, first_minute, last_minute FROM served_versions "
        "WHERE model != '' ORDER BY model, version"
    ).fetchall()


def minute_range(conn: sqlite3.Connection, model: str | None, version: int | None
                 ) -> tuple[int | None, int | None]:  # fmt: skip
    """The first and last minute with traffic for the filter (``None`` when none)."""
    where, args = _filter(model, version)
    row = conn.execute(
        f"SELECT MIN(first_minute), MAX(last_minute) FROM served_versions WHERE {where}", args
    ).fetchone()
    return row[0], row[1]


def _grain(bin_minutes: int) -> str:
    """Bins of whole hours read the hourly rollups (60 times fewer rows)."""
    return "hours" if bin_minutes % 60 == 0 else "minutes"


def traffic(
    conn: sqlite3.Connection,
    model: str | None,
    version: int | None,
    first_minute: int,
    last_minute: int,
    bin_minutes: int,
) -> list[tuple[int, str, int, int, int, int, int, float]]:
    """``(bin, model, version, status_class, latency_bucket, n, rows, latency_sum)``.

    ``bin`` is the first minute of its bin (bins of ``bin_minutes`` from
    ``first_minute``; whole hours when ``bin_minutes`` is a multiple of 60, and then
    ``first_minute`` should start an hour); minutes ``first_minute`` to
    ``last_minute`` inclusive.
    """
    where, args = _filter(model, version)
    return conn.execute(
        "SELECT ? + (minute - ?) / ? * ?, model, version, status_class, latency_bucket, "
        f"SUM(n), SUM(rows), SUM(latency_sum) FROM request_{_grain(bin_minutes)} "
        f"WHERE minute BETWEEN ? AND ? AND {where} GROUP BY 1, 2, 3, 4, 5",
        (first_minute, first_minute, bin_minutes, bin_minutes, first_minute, last_minute,
         *args),
    ).fetchall()  # fmt: skip


def predictions(
    conn: sqlite3.Connection,
    model: str | None,
    version: int | None,
    first_minute: int,
    last_minute: int,
    bin_minutes: int,
) -> list[tuple[int, str, int, float, float, float | None, float | None]]:
    """``(bin, label, rows, value_sum, value_squares, value_min, value_max)`` per bin."""
    where, args = _filter(model, version)
    return conn.execute(
        "SELECT ? + (minute - ?) / ? * ?, label, SUM(n), SUM(value_sum), SUM(value_squares), "
        f"MIN(value_min), MAX(value_max) FROM prediction_{_grain(bin_minutes)} "
        f"WHERE minute BETWEEN ? AND ? AND {where} GROUP BY 1, 2 ORDER BY 1",
        (first_minute, first_minute, bin_minutes, bin_minutes, first_minute, last_minute,
         *args),
    ).fetchall()  # fmt: skip


def latency_bounds(conn: sqlite3.Connection) -> list[float]:
    """The latency histogram's bucket upper bounds, in ms, by bucket number."""
    return [row[0] for row in conn.execute("SELECT upper_ms FROM latency_buckets ORDER BY bucket")]


def confusion(
    conn: sqlite3.Connection, model: str | None, version: int | None, since: float, until: float
) -> list[tuple[str, str | None, int]]:
    """``(true label, predicted label, rows)`` over labelled answers in ``[since, until)``.

    The newest label of a row wins when it was labelled more than once; answers whose
    outputs were not captured (no predicted label) are left out. Read from the
    per-minute rollup and the window's partial edges (:mod:`.quality_rollups`).
    """
    where, args = _filter(model, version)
    return list(quality_rollups.confusion(conn, where, args, since, until))


def regression_errors(
    conn: sqlite3.Connection, model: str | None, version: int | None, since: float, until: float
) -> tuple[int, float, float, float, float]:
    """``(rows, Σ|y-ŷ|, Σ(y-ŷ)², Σy, Σy²)`` over labelled numeric answers in the window."""
    where, args = _filter(model, version)
    return quality_rollups.regression_errors(conn, where, args, since, until)


def has_labels(conn: sqlite3.Connection, model: str) -> bool:
    """Whether ``model``'s logged answers carry class labels (classification)."""
    row = conn.execute(
        "SELECT 1 FROM prediction_hours WHERE model = ? AND label != '' LIMIT 1", (model,)
    ).fetchone()
    return row is not None


#: Request ids per ``IN (...)`` lookup (well under SQLite's bound on variables).
_IDS_PER_QUERY = 500


def answered(conn: sqlite3.Connection, request_ids: list[str]
             ) -> dict[str, tuple[str, int, int, int, int | None]]:  # fmt: skip
    """``{request_id: (model, version, status, rows, deployment_id)}`` of the logged ones.

    Ids not in the log are absent. One indexed lookup per :data:`_IDS_PER_QUERY` ids.
    """
    found: dict[str, tuple[str, int, int, int, int | None]] = {}
    for first in range(0, len(request_ids), _IDS_PER_QUERY):
        chunk = request_ids[first : first + _IDS_PER_QUERY]
        marks = ", ".join("?" * len(chunk))
        for rid, model, version, status, n_rows, deployment in conn.execute(
            "SELECT request_id, COALESCE(model, ''), COALESCE(version, 0), status, n_rows, "
            f"deployment_id FROM request_log WHERE request_id IN ({marks})",
            chunk,
        ):
            found[rid] = (model, version, status, n_rows, deployment)
    return found


def predicted_labels(conn: sqlite3.Connection, model: str) -> list[str]:
    """The class labels ``model``'s logged answers named (its classes, once deleted)."""
    return [row[0] for row in conn.execute(
        "SELECT DISTINCT label FROM prediction_hours WHERE model = ? AND label != '' "
        "ORDER BY label", (model,))]  # fmt: skip


def store_labels(
    conn: sqlite3.Connection, labels: Sequence[tuple[int | None, str, float, str, int]]
) -> int:
    """Store ``(deployment_id, request_id, ts, label JSON, row)`` labels all or none.

    Resolved against their answers in the same transaction (rollups.resolve_feedback),
    so live quality counts them at once. Returns how many were stored.
    """
    with transaction(conn):
        after = rollups.last_id(conn, "feedback")
        conn.executemany(
            "INSERT INTO feedback (deployment_id, request_id, ts, label, row) "
            "VALUES (?, ?, ?, ?, ?)", labels,
        )  # fmt: skip
        rollups.resolve_feedback(conn, after, rollups.last_id(conn))
    return len(labels)


def confusion_last(
    conn: sqlite3.Connection, model: str, version: int | None, count: int
) -> list[tuple[str, str | None, int]]:
    """``(true, predicted, rows)`` over the newest ``count`` labelled answers."""
    where, args = _filter(model, version)
    return list(quality_rollups.confusion_last(conn, where, args, count))


def regression_errors_last(
    conn: sqlite3.Connection, model: str, version: int | None, count: int
) -> tuple[int, float, float, float, float]:
    """:func:`regression_errors` over the newest ``count`` labelled numeric answers."""
    where, args = _filter(model, version)
    return quality_rollups.regression_errors_last(conn, where, args, count)


def quality_bins(
    conn: sqlite3.Connection,
    model: str,
    version: int | None,
    since: float,
    until: float,
    bin_seconds: float,
    classification: bool,
) -> list[tuple[int, int, float]]:
    """``(bin, labelled rows, correct rows or Σ|y-ŷ|)`` per bin of ``bin_seconds`` from
    ``since``, over labelled answers in ``[since, until)``."""
    where, args = _filter(model, version)
    return quality_rollups.bins(conn, where, args, since, until, bin_seconds, classification)


def estimator(conn: sqlite3.Connection, model: str, version: int) -> dict[str, Any] | None:
    """The stored quality estimator of ``model:version`` (None when not built yet)."""
    row = conn.execute(
        "SELECT estimator FROM quality_estimators WHERE model = ? AND version = ?",
        (model, version),
    ).fetchone()
    return None if row is None else dict(json.loads(row[0]))


def put_estimator(conn: sqlite3.Connection, model: str, version: int,
                  found: dict[str, Any]) -> None:  # fmt: skip
    """Store ``model:version``'s estimator (one per version; a second one is ignored)."""
    with transaction(conn):
        conn.execute(
            "INSERT OR IGNORE INTO quality_estimators (model, version, estimator, created_at) "
            "VALUES (?, ?, ?, ?)", (model, version, json.dumps(found), time.time()),
        )  # fmt: skip


def served_probabilities(
    conn: sqlite3.Connection, model: str, version: int | None, since: float, until: float,
    limit: int,
) -> list[tuple[float, int, str | None, str | None]]:  # fmt: skip
    """``(ts, version, label, probabilities JSON)`` of the newest answered rows of
    ``model`` in ``[since, until)``, at most ``limit`` (newest requests first)."""
    where, args = "r.model = ?", list[Any]([model])
    if version:
        where, args = f"{where} AND r.version = ?", [model, version]
    return conn.execute(
        "SELECT r.ts, r.version, json_extract(a.value, '$.label'), "
        "json_extract(a.value, '$.probabilities') "
        "FROM (SELECT ts, version, outputs FROM request_log AS r "
        f"      WHERE {where} AND r.ts >= ? AND r.ts < ? AND r.status < 400 "
        "      ORDER BY r.ts DESC LIMIT ?) AS r, "
        "json_each(CASE WHEN json_valid(r.outputs) AND json_type(r.outputs) = 'array' "
        "          THEN r.outputs ELSE '[]' END) AS a "
        "WHERE a.type = 'object' LIMIT ?",
        (*args, since, until, limit, limit),
    ).fetchall()
