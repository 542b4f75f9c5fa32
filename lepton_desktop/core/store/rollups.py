"""Per-minute rollups of the request log, added by its writers batch by batch.

Whoever appends rows to ``request_log`` (the journal shipper, the replay on open, a
migration's backfill) calls :func:`roll_up` in the same transaction with the largest
id the log had before: grouped statements add the new rows to ``request_minutes`` and
``request_hours`` (requests by model, version, minute or hour, status class and latency
bucket), ``prediction_minutes`` and ``prediction_hours`` (answered rows by predicted
label, or the predicted values' moments) and ``served_versions``. A few statements per
batch, not per row: a trigger did the same work row by row at 2.5 times the shipping
cost (bench/monitoring_read.py). Shadow rows (a candidate's answers to copies of
requests, ``protocol = 'shadow'``) are not traffic and are left out.
"""

from __future__ import annotations

import sqlite3

#: Upper bounds of the latency histogram's buckets, in ms: 0.01 ms * 2^(i/4), so a
#: percentile read from the histogram is within one bucket (19%) of the true one, from
#: 10 µs to about 9 minutes. Prometheus' histograms work the same way; a fixed ladder
#: keeps the rollups additive over any window.
LATENCY_BUCKETS = [0.01 * 2 ** (i / 4) for i in range(96)]


#: The rollup grains: table suffix -> the SQL of a row's minute in that grain.
GRAINS = {
    "minutes": "CAST(NEW.ts / 60 AS INTEGER)",
    "hours": "CAST(NEW.ts / 3600 AS INTEGER) * 60",
}


def roll_up(conn: sqlite3.Connection, after_id: int) -> None:
    """Add the log rows with ``id > after_id`` to the rollups (inside the caller's transaction)."""
    for statement in _STATEMENTS:
        conn.execute(statement, (after_id,))


def last_id(conn: sqlite3.Connection, table: str = "request_log") -> int:
    """``table``'s largest id so far (0 when empty): where the next batch starts after."""
    return int(conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()[0])


def resolve_feedback(conn: sqlite3.Connection, after_feedback: int, after_request: int) -> None:
    """Give new feedback its decoded label and the answer it labels; supersede old labels.

    Feedback rows with ``id > after_feedback`` get ``truth`` (the label as text) and
    ``truth_value`` (when numeric); every unresolved label whose request is now in the
    log (a new label, or a label whose request arrived with ids ``> after_request``:
    two server processes ship their journals apart) gets the request's model, version
    and time and the predicted label or value of its row. Of several labels of one row
    the newest counts; the older ones are marked ``superseded``. Inside the caller's
    transaction; each step one statement.
    """
    conn.execute(_DECODE_LABELS, (after_feedback,))
    conn.execute(_LINK_ANSWERS, (after_feedback, after_request))
    conn.execute(_SUPERSEDE, (after_feedback,))


def _requests_sql(grain: str) -> str:
    """Add the log's rows with ``id > ?`` to ``request_<grain>``."""
    bucket = (
        "COALESCE((SELECT bucket FROM latency_buckets WHERE upper_ms >= NEW.latency_ms "
        f"ORDER BY upper_ms LIMIT 1), {len(LATENCY_BUCKETS) - 1})"
    )
    return f"""
        INSERT INTO request_{grain}
            (model, version, minute, status_class, latency_bucket, n, rows, latency_sum)
        SELECT COALESCE(NEW.model, ''), COALESCE(NEW.version, 0), {GRAINS[grain]},
               NEW.status / 100, {bucket}, COUNT(*), TOTAL(NEW.n_rows), TOTAL(NEW.latency_ms)
        FROM request_log AS NEW WHERE NEW.id > ? AND NEW.protocol != 'shadow'
        GROUP BY 1, 2, 3, 4, 5
        ON CONFLICT DO UPDATE SET n = n + excluded.n, rows = rows + excluded.rows,
            latency_sum = latency_sum + excluded.latency_sum
    """


def _predictions_sql(grain: str) -> str:
    """Add the answers (a JSON array of ``{label}`` or ``{value}``) of rows with ``id > ?``.

    Every JSON function is guarded by ``CASE`` (SQLite evaluates ``AND`` operands in
    no promised order): a log row whose outputs are not an array of objects counts
    nothing here, and never makes the writer's batch fail.
    """
    outputs = (
        "COALESCE(CASE WHEN NEW.status < 400 AND json_valid(NEW.outputs) THEN "
        "CASE json_type(NEW.outputs) WHEN 'array' THEN NEW.outputs END END, '[]')"
    )
    value = (
        "CASE answer.type WHEN 'object' THEN CASE json_type(answer.value, '$.value') "
        "WHEN 'integer' THEN json_extract(answer.value, '$.value') "
        "WHEN 'real' THEN json_extract(answer.value, '$.value') END END"
    )
    label = (
        "COALESCE(CAST(CASE answer.type WHEN 'object' THEN "
        "json_extract(answer.value, '$.label') END AS TEXT), '')"
    )
    return f"""
        INSERT INTO prediction_{grain}
            (model, version, minute, label, n, value_sum, value_squares, value_min, value_max)
        SELECT model, version, minute, label, COUNT(*), TOTAL(value), TOTAL(value * value),
               MIN(value), MAX(value)
        FROM (
            SELECT COALESCE(NEW.model, '') AS model, COALESCE(NEW.version, 0) AS version,
                   {GRAINS[grain]} AS minute, {label} AS label, {value} AS value
            FROM request_log AS NEW, json_each({outputs}) AS answer
            WHERE NEW.id > ? AND NEW.protocol != 'shadow' AND answer.type = 'object'
        )
        WHERE true GROUP BY model, version, minute, label
        ON CONFLICT DO UPDATE SET n = n + excluded.n, value_sum = value_sum + excluded.value_sum,
            value_squares = value_squares + excluded.value_squares,
            value_min = MIN(COALESCE(value_min, excluded.value_min),
                            COALESCE(excluded.value_min, value_min)),
            value_max = MAX(COALESCE(value_max, excluded.value_max),
                            COALESCE(excluded.value_max, value_max))
    """


_SERVED = f"""
    INSERT INTO served_versions (model, version, requests, first_minute, last_minute)
    SELECT COALESCE(NEW.model, ''), COALESCE(NEW.version, 0), COUNT(*),
           MIN({GRAINS["minutes"]}), MAX({GRAINS["minutes"]})
    FROM request_log AS NEW WHERE NEW.id > ? AND NEW.protocol != 'shadow' GROUP BY 1, 2
    ON CONFLICT DO UPDATE SET requests = requests + excluded.requests,
        first_minute = MIN(first_minute, excluded.first_minute),
        last_minute = MAX(last_minute, excluded.last_minute)
"""
_DECODE_LABELS = """
    UPDATE feedback SET
        truth = CASE WHEN json_valid(label) THEN CAST(json_extract(label, '$') AS TEXT) END,
        truth_value = CASE WHEN json_valid(label) THEN CASE json_type(label)
            WHEN 'integer' THEN json_extract(label, '$')
            WHEN 'real' THEN json_extract(label, '$') END END
    WHERE id > ?
"""
#: The labelled row's answer, when the logged outputs hold an object for that row.
_ANSWER = """CASE WHEN json_valid(r.outputs) THEN
    CASE json_type(r.outputs, '$[' || feedback.row || ']') WHEN 'object'
    THEN json_extract(r.outputs, '$[' || feedback.row || ']') END END"""
_LINK_ANSWERS = f"""
    UPDATE feedback SET
        model = COALESCE(r.model, ''), version = COALESCE(r.version, 0), request_ts = r.ts,
        predicted = CAST(json_extract({_ANSWER}, '$.label') AS TEXT),
        predicted_value = CASE json_type({_ANSWER}, '$.value')
            WHEN 'integer' THEN json_extract({_ANSWER}, '$.value')
            WHEN 'real' THEN json_extract({_ANSWER}, '$.value') END
    FROM request_log AS r
    WHERE r.request_id = feedback.request_id AND r.status < 400 AND feedback.model IS NULL
      AND (feedback.id > ? OR r.id > ?)
"""
_SUPERSEDE = """
    UPDATE feedback SET superseded = 1
    WHERE superseded = 0
      AND request_id IN (SELECT request_id FROM feedback WHERE id > ?)
      AND EXISTS (SELECT 1 FROM feedback AS newer
                  WHERE newer.request_id = feedback.request_id AND newer.row = feedback.row
                    AND (newer.ts, newer.id) > (feedback.ts, feedback.id))
"""
_STATEMENTS = (
    *(_requests_sql(grain) for grain in GRAINS),
    *(_predictions_sql(grain) for grain in GRAINS),
    _SERVED,
)
