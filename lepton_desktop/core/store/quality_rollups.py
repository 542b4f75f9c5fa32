"""Per-minute rollups of live quality, kept by triggers on ``feedback`` (SQL only here).

A feedback row *counts* when it is resolved against the answer it labels (its model
set, see :func:`.rollups.resolve_feedback`), is its row's newest label (not
superseded) and holds both a true and a predicted label (``label_minutes``: rows per
model, minute, version and (true, predicted) pair, a confusion matrix per minute) or
both values (``error_minutes``: rows, Σ|y-ŷ|, Σ(y-ŷ)², Σy and Σy² per model, minute
and version, what MAE, RMSE and R² need). Triggers add a row when it starts counting
and take it back when it stops: a newer label supersedes it, forget deletes it, a
deployment is deleted with its log, a shared copy is stripped. The rollups therefore
always equal an aggregate of the counted rows, whichever writer or deleter changed them.
Triggers, not grouped statements per batch as the request rollups (:mod:`.rollups`):
feedback is changed in place by several paths, and a trigger is the one place all of
them pass; labels arrive far more slowly than requests. Retention deletes log rows, not
feedback, so it leaves these as it leaves the request rollups.

A time window ``[since, until)`` is read as the minutes wholly inside it from the rollup
plus the raw rows of its partial first and last minute (an index range each); a count
window (the newest N labelled rows) finds the minute of the Nth newest in the rollup
(newest minutes first) and its answer time on the ``feedback_quality`` index inside
that minute, then reads everything newer as a time window, plus the few rows at
exactly that time it needs (newest id first).
"""

from __future__ import annotations

import math
import sqlite3
from typing import Any

#: Both rollups: table -> (the condition a feedback row counts under, with ``{r}`` for
#: ``NEW`` or ``OLD``; the key columns beyond model, minute and version; the summed
#: columns and the expression each adds per row).
_COUNTED = "{r}.model IS NOT NULL AND {r}.request_ts IS NOT NULL AND {r}.superseded = 0"
ROLLUPS: dict[str, tuple[str, tuple[str, ...], dict[str, str]]] = {
    "label_minutes": (
        f"{_COUNTED} AND {{r}}.truth IS NOT NULL AND {{r}}.predicted IS NOT NULL",
        ("truth", "predicted"),
        {"n": "1"},
    ),
    "error_minutes": (
        f"{_COUNTED} AND {{r}}.truth_value IS NOT NULL AND {{r}}.predicted_value IS NOT NULL",
        (),
        {
            "n": "1",
            "abs_sum": "ABS({r}.truth_value - {r}.predicted_value)",
            "sq_sum": "({r}.truth_value - {r}.predicted_value) "
            "* ({r}.truth_value - {r}.predicted_value)",
            "y_sum": "{r}.truth_value",
            "y_sq": "{r}.truth_value * {r}.truth_value",
        },
    ),
}
#: The rollup's minute of a feedback row (the answered request's minute).
_MINUTE = "CAST({r}.request_ts / 60 AS INTEGER)"
#: Sentinels for a window open at one end (any real minute lies between them).
_NO_MINUTE_BELOW, _NO_MINUTE_ABOVE = -(2**62), 2**62
#: Feedback rows folded into the rollups per statement when a migration fills them.
BACKFILL_BATCH = 100_000


def _key_columns(table: str) -> tuple[str, ...]:
    return ("model", "minute", "version", *ROLLUPS[table][1])


def create_tables(conn: sqlite3.Connection) -> None:
    """The two rollup tables and the triggers that keep them (a migration's step)."""
    for table, (_, keys, sums) in ROLLUPS.items():
        key_sql = "".join(f"{k} TEXT NOT NULL, " for k in keys)
        sum_sql = ", ".join(
            f"{name} {'INTEGER' if name == 'n' else 'REAL'} NOT NULL" for name in sums
        )
        conn.execute(
            f"CREATE TABLE {table} (model TEXT NOT NULL, minute INTEGER NOT NULL, "
            f"version INTEGER NOT NULL, {key_sql}{sum_sql}, "
            f"PRIMARY KEY ({', '.join(_key_columns(table))})) WITHOUT ROWID"
        )
        for statement in _triggers(table):
            conn.execute(statement)


def _triggers(table: str) -> list[str]:
    """Add a row that starts counting (inserted or updated), take back one that stops
    (updated or deleted). An update that changes nothing that counts takes the row
    back and adds it again: the sums are unchanged."""
    counted, keys, sums = ROLLUPS[table]
    watched = "model, version, request_ts, superseded, truth, predicted, truth_value, " \
        "predicted_value"  # fmt: skip
    added = {
        "insert": f"AFTER INSERT ON feedback WHEN {counted.format(r='NEW')}",
        "update_in": f"AFTER UPDATE OF {watched} ON feedback WHEN {counted.format(r='NEW')}",
    }
    taken = {
        "update_out": f"AFTER UPDATE OF {watched} ON feedback WHEN {counted.format(r='OLD')}",
        "delete": f"AFTER DELETE ON feedback WHEN {counted.format(r='OLD')}",
    }
    columns = _key_columns(table)
    values = ("NEW.model", _MINUTE.format(r="NEW"), "NEW.version", *(f"NEW.{k}" for k in keys))
    add = (
        f"INSERT INTO {table} ({', '.join(columns)}, {', '.join(sums)}) VALUES "
        f"({', '.join(values)}, {', '.join(e.format(r='NEW') for e in sums.values())}) "
        "ON CONFLICT DO UPDATE SET "
        + ", ".join(f"{name} = {name} + excluded.{name}" for name in sums)
    )
    old_key = " AND ".join(
        f"{c} = {_MINUTE.format(r='OLD') if c == 'minute' else f'OLD.{c}'}" for c in columns
    )
    take = (
        f"UPDATE {table} SET "
        + ", ".join(f"{name} = {name} - ({e.format(r='OLD')})" for name, e in sums.items())
        + f" WHERE {old_key}; DELETE FROM {table} WHERE {old_key} AND n <= 0"
    )
    bodies = [(event, when, add) for event, when in added.items()]
    bodies += [(event, when, take) for event, when in taken.items()]
    return [f"CREATE TRIGGER {table}_{event} {when} BEGIN {body}; END"
            for event, when, body in bodies]  # fmt: skip


def backfill(conn: sqlite3.Connection, batch: int | None = None) -> None:
    """Fold the feedback already stored into both rollups, ``batch`` ids at a time (so
    a grouping never holds more than one batch), inside the caller's transaction."""
    batch = batch or BACKFILL_BATCH
    last = int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM feedback").fetchone()[0])
    for table, (counted, _, sums) in ROLLUPS.items():
        columns = ", ".join(_key_columns(table))
        minute = _MINUTE.format(r="feedback")
        keys = ", ".join(minute if c == "minute" else c for c in _key_columns(table))
        totals = ", ".join(f"TOTAL({e.format(r='feedback')})" for e in sums.values())
        statement = (
            f"INSERT INTO {table} ({columns}, {', '.join(sums)}) SELECT {keys}, {totals} "
            f"FROM feedback WHERE id > ? AND id <= ? AND {counted.format(r='feedback')} "
            f"GROUP BY {keys} ON CONFLICT DO UPDATE SET "
            + ", ".join(f"{name} = {name} + excluded.{name}" for name in sums)
        )
        for first in range(0, last, batch):
            conn.execute(statement, (first, first + batch))


# -- reads ------------------------------------------------------------------------------

_CLASSIFIED = "truth IS NOT NULL AND predicted IS NOT NULL"
_VALUED = "truth_value IS NOT NULL AND predicted_value IS NOT NULL"
_ERROR_SUMS = (
    "COUNT(*), TOTAL(ABS(truth_value - predicted_value)), "
    "TOTAL((truth_value - predicted_value) * (truth_value - predicted_value)), "
    "TOTAL(truth_value), TOTAL(truth_value * truth_value)"
)


def _full_minutes(since: float, until: float) -> tuple[int, int]:
    """``[first, end)``: the minutes wholly inside ``[since, until)`` (empty when
    ``first >= end``); an infinite bound gives a sentinel."""
    first = _NO_MINUTE_BELOW if since == -math.inf else math.ceil(since / 60)
    end = _NO_MINUTE_ABOVE if until == math.inf else math.floor(until / 60)
    return first, end


def _edges(since: float, until: float) -> list[tuple[str, tuple[float | int, ...]]]:
    """The raw reads a window needs beside its whole minutes: SQL conditions on
    ``feedback`` and their arguments. A row belongs to an edge by the same minute the
    triggers give it, so no row is counted twice at a minute's boundary."""
    first, end = _full_minutes(since, until)
    minute = _MINUTE.format(r="feedback")
    if first >= end:
        return [("request_ts >= ? AND request_ts < ?", (since, until))]
    edges: list[tuple[str, tuple[float | int, ...]]] = []
    if first != _NO_MINUTE_BELOW:  # the partial minute before the first whole one
        edges.append((f"request_ts >= ? AND request_ts < ? AND {minute} < ?",
                      (since, first * 60 + 1, first)))  # fmt: skip
    if end != _NO_MINUTE_ABOVE:  # the partial minute after the last whole one
        edges.append((f"request_ts >= ? AND request_ts < ? AND {minute} >= ?",
                      (end * 60 - 1, until, end)))  # fmt: skip
    return edges


def confusion(conn: sqlite3.Connection, where: str, args: tuple[Any, ...], since: float,
              until: float) -> list[tuple[str, str, int]]:  # fmt: skip
    """``(true, predicted, rows)`` of the counted labels of the filter ``where`` (on
    model and version) answered in ``[since, until)``."""
    cells: dict[tuple[str, str], int] = {}
    first, end = _full_minutes(since, until)
    if first < end:
        for truth, predicted, n in conn.execute(
            f"SELECT truth, predicted, SUM(n) FROM label_minutes WHERE {where} "
            "AND minute >= ? AND minute < ? GROUP BY 1, 2", (*args, first, end),
        ):  # fmt: skip
            cells[(truth, predicted)] = cells.get((truth, predicted), 0) + int(n)
    for condition, bounds in _edges(since, until):
        for truth, predicted, n in conn.execute(
            f"SELECT truth, predicted, COUNT(*) FROM feedback WHERE {where} AND {condition} "
            f"AND superseded = 0 AND {_CLASSIFIED} GROUP BY 1, 2", (*args, *bounds),
        ):  # fmt: skip
            cells[(truth, predicted)] = cells.get((truth, predicted), 0) + int(n)
    return [(t, p, n) for (t, p), n in cells.items() if n > 0]


def regression_errors(
    conn: sqlite3.Connection, where: str, args: tuple[Any, ...], since: float, until: float
) -> tuple[int, float, float, float, float]:
    """``(rows, Σ|y-ŷ|, Σ(y-ŷ)², Σy, Σy²)`` of the counted numeric labels in the window."""
    totals = [0.0] * 5
    first, end = _full_minutes(since, until)
    reads: list[tuple[str, tuple[Any, ...]]] = []
    if first < end:
        reads.append((
            "SELECT TOTAL(n), TOTAL(abs_sum), TOTAL(sq_sum), TOTAL(y_sum), TOTAL(y_sq) "
            f"FROM error_minutes WHERE {where} AND minute >= ? AND minute < ?",
            (*args, first, end)))  # fmt: skip
    for condition, bounds in _edges(since, until):
        reads.append((
            f"SELECT {_ERROR_SUMS} FROM feedback WHERE {where} AND {condition} "
            f"AND superseded = 0 AND {_VALUED}", (*args, *bounds)))  # fmt: skip
    for sql, sql_args in reads:
        row = conn.execute(sql, sql_args).fetchone()
        totals = [a + float(b) for a, b in zip(totals, row, strict=True)]
    return int(totals[0]), totals[1], totals[2], totals[3], totals[4]


def bins(
    conn: sqlite3.Connection, where: str, args: tuple[Any, ...], since: float, until: float,
    bin_seconds: float, classification: bool,
) -> list[tuple[int, int, float]]:  # fmt: skip
    """``(bin, labelled rows, correct rows or Σ|y-ŷ|)`` per bin of ``bin_seconds`` from
    ``since`` over ``[since, until)``, bins in order. Bins of whole minutes that start
    on a minute read the rollup (a minute never straddles two bins) plus the raw edges;
    other bins read the raw rows."""
    labelled, score = ((_CLASSIFIED, "TOTAL(truth = predicted)") if classification
                       else (_VALUED, "TOTAL(ABS(truth_value - predicted_value))"))  # fmt: skip
    found: dict[int, list[float]] = {}
    reads: list[tuple[str, tuple[Any, ...]]] = []
    raw = f"SELECT CAST((request_ts - ?) / ? AS INTEGER), COUNT(*), {score} FROM feedback " \
        f"WHERE {where} AND superseded = 0 AND {labelled} AND "  # fmt: skip
    first, end = _full_minutes(since, until)
    if since % 60 == 0 and bin_seconds % 60 == 0 and first < end:
        table, rolled = (("label_minutes", "TOTAL(n * (truth = predicted))") if classification
                         else ("error_minutes", "TOTAL(abs_sum)"))  # fmt: skip
        reads.append((
            f"SELECT CAST((minute * 60 - ?) / ? AS INTEGER), SUM(n), {rolled} FROM {table} "
            f"WHERE {where} AND minute >= ? AND minute < ? GROUP BY 1",
            (since, bin_seconds, *args, first, end)))  # fmt: skip
        reads += [(raw + condition + " GROUP BY 1", (since, bin_seconds, *args, *bounds))
                  for condition, bounds in _edges(since, until)]  # fmt: skip
    else:
        reads.append((raw + "request_ts >= ? AND request_ts < ? GROUP BY 1",
                       (since, bin_seconds, *args, since, until)))  # fmt: skip
    for sql, sql_args in reads:
        for index, count, total in conn.execute(sql, sql_args):
            cell = found.setdefault(int(index), [0, 0.0])
            cell[0], cell[1] = cell[0] + count, cell[1] + float(total)
    return [(index, int(count), total) for index, (count, total) in sorted(found.items())]


def _nth_newest(conn: sqlite3.Connection, where: str, args: tuple[Any, ...], labelled: str,
                count: int) -> float | None:  # fmt: skip
    """The answer time of the ``count``-th newest counted label (None: fewer exist).

    The rollup's minutes, newest first, say which minute holds it (a walk over
    minutes, not labels); the index then steps back inside that minute only.
    """
    table = "label_minutes" if labelled == _CLASSIFIED else "error_minutes"
    newer, minute = 0, None
    for candidate, rows in conn.execute(
        f"SELECT minute, SUM(n) FROM {table} WHERE {where} GROUP BY minute "
        "ORDER BY minute DESC", args,
    ):  # fmt: skip
        if newer + rows >= count:
            minute = int(candidate)
            break
        newer += rows
    if minute is None:
        return None
    row = conn.execute(
        f"SELECT request_ts FROM feedback WHERE {where} AND request_ts >= ? AND request_ts < ? "
        f"AND {_MINUTE.format(r='feedback')} = ? AND superseded = 0 AND {labelled} "
        "ORDER BY request_ts DESC LIMIT 1 OFFSET ?",
        (*args, minute * 60 - 1, minute * 60 + 61, minute, count - newer - 1),
    ).fetchone()  # fmt: skip
    return None if row is None else float(row[0])


def _at(conn: sqlite3.Connection, where: str, args: tuple[Any, ...], labelled: str,
        columns: str, ts: float, count: int) -> list[tuple[Any, ...]]:  # fmt: skip
    """``columns`` of the newest (by id) ``count`` counted labels answered at ``ts``."""
    if count <= 0:
        return []
    return conn.execute(
        f"SELECT {columns} FROM feedback WHERE {where} AND request_ts = ? AND superseded = 0 "
        f"AND {labelled} ORDER BY id DESC LIMIT ?", (*args, ts, count),
    ).fetchall()  # fmt: skip


def confusion_last(conn: sqlite3.Connection, where: str, args: tuple[Any, ...],
                   count: int) -> list[tuple[str, str, int]]:  # fmt: skip
    """:func:`confusion` over the newest ``count`` counted labels (by answer time, then
    newest id among labels answered at the same time)."""
    cutoff = _nth_newest(conn, where, args, _CLASSIFIED, count)
    if cutoff is None:
        return confusion(conn, where, args, -math.inf, math.inf)
    cells = confusion(conn, where, args, math.nextafter(cutoff, math.inf), math.inf)
    found = {(t, p): n for t, p, n in cells}
    newer = sum(found.values())
    for truth, predicted in _at(conn, where, args, _CLASSIFIED, "truth, predicted", cutoff,
                                count - newer):  # fmt: skip
        found[(truth, predicted)] = found.get((truth, predicted), 0) + 1
    return [(t, p, n) for (t, p), n in found.items()]


def regression_errors_last(conn: sqlite3.Connection, where: str, args: tuple[Any, ...],
                           count: int) -> tuple[int, float, float, float, float]:  # fmt: skip
    """:func:`regression_errors` over the newest ``count`` counted numeric labels."""
    cutoff = _nth_newest(conn, where, args, _VALUED, count)
    if cutoff is None:
        return regression_errors(conn, where, args, -math.inf, math.inf)
    rows, *sums = regression_errors(conn, where, args, math.nextafter(cutoff, math.inf),
                                    math.inf)  # fmt: skip
    for y, predicted in _at(conn, where, args, _VALUED, "truth_value, predicted_value",
                            cutoff, count - rows):  # fmt: skip
        error = y - predicted
        rows += 1
        sums = [sums[0] + abs(error), sums[1] + error * error, sums[2] + y, sums[3] + y * y]
    return rows, sums[0], sums[1], sums[2], sums[3]
