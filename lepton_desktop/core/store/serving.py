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
from lepton_desktop.core.errors import InvalidOptionError, NotFoundError
from lepton_desktop.core.store import drift, rollups
from lepton_desktop.core.store.db import operational_errors, transaction

_DEPLOYMENT_COLUMNS = (
    "id, job_id, host, port, url, token, status, models, loaded, options, error, pid, "
    "created_at, started_at, stopped_at"
)
_JSON_FIELDS = ("models", "loaded", "options")
_UPDATABLE = {
    "job_id", "host", "port", "url", "token", "status", "models", "loaded", "options",
    "error", "pid", "started_at", "stopped_at",
}  # fmt: skip
REQUEST_COLUMNS = (
    "id, deployment_id, ts, request_id, method, path, protocol, model, version, status, "
    "latency_ms, n_rows, inputs, outputs, error"
)
_REQUEST_FIELDS = REQUEST_COLUMNS.split(", ")[1:]


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
    with transaction(conn):
        after = rollups.last_id(conn)
        _insert_requests(conn, "INSERT", values)
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
    with transaction(conn):
        after = rollups.last_id(conn)
        after_feedback = rollups.last_id(conn, "feedback")
        stored = _insert_requests(conn, "INSERT OR IGNORE", requests)
        if stored:
            rollups.roll_up(conn, after)
            drift.roll_up(conn, after)
        conn.executemany(_INSERT_FEEDBACK.replace("INSERT", "INSERT OR IGNORE", 1), feedback)
        rollups.resolve_feedback(conn, after_feedback, after)
    return stored


#: Request rows per INSERT statement at most (SQLite's bound on variables may lower it).
ROWS_PER_STATEMENT = 500


def _variable_limit(conn: sqlite3.Connection) -> int:
    # sqlcipher3's connections (encrypted projects) have no getlimit(); SQLCipher 4.12
    # is built on SQLite 3.51, whose default is this many.
    getlimit = getattr(conn, "getlimit", None)
    return int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)) if getlimit else 32766


def _insert_requests(conn: sqlite3.Connection, verb: str, rows: Sequence[tuple[Any, ...]]) -> int:
    """Insert request rows (``_REQUEST_FIELDS`` order) with multi-row ``VALUES``
    statements; return how many were stored (the full-text index's rows not counted).

    Not ``executemany``: the log's full-text index (FTS5, kept by a trigger) flushes
    its pending entries at the end of every statement, and one statement per row made
    each row an index segment of its own, to be merged later: about 7 times slower.
    """
    width = len(_REQUEST_FIELDS)
    variables = _variable_limit(conn)
    per_statement = max(1, min(ROWS_PER_STATEMENT, variables // width))
    head = f"{verb} INTO request_log ({', '.join(_REQUEST_FIELDS)}) VALUES "
    one_row = "(" + ", ".join("?" * width) + ")"
    stored = 0
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        values = [value for row in chunk for value in row]
        # rowcount: the rows this statement stored (not the trigger's, not ignored ones)
        stored += conn.execute(head + ", ".join([one_row] * len(chunk)), values).rowcount
    return stored


_REQUEST_DEFAULTS: dict[str, Any] = {"protocol": "other", "n_rows": 0}


def _request_value(row: Mapping[str, Any], field: str) -> Any:
    value = row.get(field, _REQUEST_DEFAULTS.get(field))
    if field in ("inputs", "outputs") and value is not None and not isinstance(value, str):
        return json.dumps(value)
    return value


def request_record(row: tuple[Any, ...]) -> RequestRecord:
    """A request-log row (``REQUEST_COLUMNS`` order) with its inputs and outputs decoded."""
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
        f"SELECT {REQUEST_COLUMNS} FROM request_log WHERE {where} ORDER BY id LIMIT ?",
        (*args, limit),
    )
    return [request_record(r) for r in rows]


def latest_requests(
    conn: sqlite3.Connection, deployment_id: int | None = None, limit: int = 100
) -> list[RequestRecord]:
    """The newest ``limit`` logged requests (of one deployment, or of all), newest first."""
    one = deployment_id is not None
    where, args = ("WHERE deployment_id = ?", (deployment_id,)) if one else ("", ())
    rows = conn.execute(
        f"SELECT {REQUEST_COLUMNS} FROM request_log {where} ORDER BY id DESC LIMIT ?",
        (*args, limit),
    )
    return [request_record(r) for r in rows]


#: The messages of SQLite's full-text engine for a query it cannot read (its other
#: errors, a locked or damaged file, are not the query's fault and keep their type).
_QUERY_ERRORS = ("fts5:", "unterminated string", "no such column", "unknown special query")


#: Leaf pages one step of :func:`merge_search_index` writes at most (a few tens of ms).
SEARCH_MERGE_PAGES = 500


def defer_search_merges(conn: sqlite3.Connection) -> None:
    """Let the request log's full-text index merge its segments only when asked.

    By default FTS5 merges a little on every write; on a log of millions of rows that
    made up a quarter of the shipping cost of a row (30 batches of 5,000 rows shipped
    into a copy of a log of 1.8M rows: 66 µs of CPU a row with it, 49 without). A
    running server's journal shipper turns it off and merges with
    :func:`merge_search_index` while the servers idle; FTS5 still merges at once
    (``crisismerge``) if a level gathers 16 segments, so searches never face an
    unbounded number of them. The setting is kept in the file (``automerge`` in the
    index's config table), so it is written only when it is not already off.
    """
    found = conn.execute("SELECT v FROM request_log_fts_config WHERE k = 'automerge'").fetchone()
    if found is not None and found[0] == 0:
        return
    with transaction(conn):
        conn.execute("INSERT INTO request_log_fts (request_log_fts, rank) VALUES ('automerge', 0)")


def merge_search_index(conn: sqlite3.Connection, pages: int = SEARCH_MERGE_PAGES) -> bool:
    """One bounded step of merging the full-text index's segments (FTS5's ``merge``
    command); whether it found work (False: nothing left to merge)."""
    before = conn.total_changes
    with transaction(conn):
        conn.execute(
            "INSERT INTO request_log_fts (request_log_fts, rank) VALUES ('merge', ?)", (pages,)
        )
    # FTS5's documented test: fewer than 2 changes means the merge had nothing to do.
    return conn.total_changes - before >= 2


def search_requests(
    conn: sqlite3.Connection,
    query: str,
    deployment_id: int | None = None,
    limit: int = 100,
    where: tuple[str, Sequence[Any]] = ("1", ()),
) -> list[RequestRecord]:
    """The newest ``limit`` requests matching a full-text query, newest first.

    The index (``request_log_fts``, migration m009) covers the request id, path,
    model, status, error and the start of the captured inputs and outputs. FTS5 walks
    its matches from the newest row down, so the query stops after ``limit`` rows
    however many match.

    Args:
        conn: the project's connection.
        query: SQLite FTS5 syntax: words (all must match), ``"a phrase"``, ``OR``,
            ``NOT``, ``prefix*``, ``column: word``.
        deployment_id: only this deployment's requests (None: every deployment).
        limit: at most this many rows.
        where: a further SQL condition on ``r`` (the log's row) and its arguments
            (a :class:`~lepton_desktop.core.store.request_log.RequestFilter`'s).

    Raises:
        InvalidOptionError: the query is not FTS5 syntax (the message says why).
    """
    one = deployment_id is not None
    condition = "request_log_fts MATCH ?" + (" AND r.deployment_id = ?" if one else "")
    condition += f" AND ({where[0]})"
    args = ((query, deployment_id) if one else (query,)) + tuple(where[1])
    columns = ", ".join(f"r.{c}" for c in REQUEST_COLUMNS.split(", "))
    try:
        rows = conn.execute(
            f"SELECT {columns} FROM request_log_fts JOIN request_log AS r "
            f"ON r.id = request_log_fts.rowid WHERE {condition} "
            "ORDER BY request_log_fts.rowid DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
    except operational_errors() as exc:
        if not str(exc).startswith(_QUERY_ERRORS):
            raise
        raise InvalidOptionError(
            f"search {query!r} is not a full-text query SQLite can read ({exc}); "
            'put words with punctuation in double quotes, e.g. "iris-mlp"'
        ) from None
    return [request_record(r) for r in rows]


def words_query(text: str) -> str:
    """A full-text query that finds rows holding every word of ``text`` (or a word that
    starts with it): each word quoted, so punctuation and FTS5's operators are plain
    text. Empty for blank text."""
    words = text.split()
    return " ".join('"' + word.replace('"', '""') + '"*' for word in words)


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
        f"SELECT {REQUEST_COLUMNS} FROM request_log WHERE request_id = ? LIMIT 1",
        (request_id,),
    ).fetchone()
    return request_record(row) if row else None


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


def add_server_events(
    conn: sqlite3.Connection, deployment_id: int | None, events: Sequence[tuple[float, str, str]]
) -> None:
    """Record what a server's supervisor did: ``(time, kind, detail)`` each."""
    if events:
        with transaction(conn):
            conn.executemany(
                "INSERT INTO server_events (deployment_id, ts, kind, detail) VALUES (?, ?, ?, ?)",
                [(deployment_id, *event) for event in events],
            )


def server_events(
    conn: sqlite3.Connection, since: float, until: float, limit: int = 1000
) -> list[tuple[float, str, str, int | None]]:
    """``(time, kind, detail, deployment_id)`` in ``[since, until)``, oldest first."""
    return conn.execute(
        "SELECT ts, kind, detail, deployment_id FROM server_events WHERE ts >= ? AND ts < ? "
        "ORDER BY ts LIMIT ?",
        (since, until, limit),
    ).fetchall()


def interrupt_orphans(conn: sqlite3.Connection) -> None:
    """Active deployments whose worker job has ended (killed, cancelled) -> interrupted."""
    with transaction(conn):
        conn.execute(
            "UPDATE deployments SET status = 'interrupted', stopped_at = ? "
            "WHERE status IN ('queued', 'starting', 'running') AND job_id IN "
            "(SELECT id FROM jobs WHERE status NOT IN ('queued', 'running'))",
            (time.time(),),
        )


#: ``lepton_meta`` key of the models whose served inputs keep their personal data.
CAPTURE_PII_KEY = "capture_pii_models"


def capture_pii_models(conn: sqlite3.Connection) -> list[str]:
    """Models whose captured inputs keep personal-data columns (the user opted in)."""
    row = conn.execute(
        "SELECT value FROM lepton_meta WHERE key = ?", (CAPTURE_PII_KEY,)
    ).fetchone()
    return sorted(json.loads(row[0])) if row else []


def set_capture_pii(conn: sqlite3.Connection, model: str, capture: bool) -> None:
    """Opt ``model`` in (``capture``) or out of keeping personal data in captured inputs."""
    with transaction(conn):
        chosen = set(capture_pii_models(conn))
        chosen = chosen | {model} if capture else chosen - {model}
        conn.execute(
            "INSERT INTO lepton_meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (CAPTURE_PII_KEY, json.dumps(sorted(chosen))),
        )
