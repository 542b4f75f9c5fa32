"""Drift references, drift sketches and request anomalies (SQL only here).

Whoever appends rows to ``request_log`` calls :func:`roll_up` in the same transaction
(beside :func:`.rollups.roll_up`): the new answered rows of every model version that
has a drift reference are counted on the reference's bins per minute and per hour
(:mod:`.drift_sketch`), and the requests with anomalous rows are flagged. A reference
stored later (:func:`put_reference`) takes in the rows logged before it in its own
transaction, so no row is counted twice or left out whichever comes first. A window's
drift then reads at most one sketch row per model version and minute (or hour).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lepton_desktop.core.store.db import transaction

if TYPE_CHECKING:
    import numpy as np

    from lepton_desktop.core.store import drift_sketch

#: The grains kept: table suffix -> seconds per bucket.
GRAINS = {"minutes": 60, "hours": 3600}
#: Rows read from the log at a time when a new reference takes in older rows.
BACKFILL_ROWS = 20_000
_ROWS = "SELECT id, model, version, ts, inputs, outputs FROM request_log"


def layout_key(profile: dict[str, Any]) -> str:
    """What must be equal for two versions' sketches to be added: features and bins."""
    # Imported here, as in every function that needs it: numpy (drift_sketch's) would
    # otherwise be imported at the GUI's start, through Project -> jobs -> serving.
    from lepton_desktop.core.store import drift_sketch

    specs = [{k: v for k, v in s.items() if k in ("name", "dtype", "mode", "edges", "categories")}
             for s in drift_sketch.Layout.of(profile).specs]  # fmt: skip
    return hashlib.sha1(json.dumps(specs, sort_keys=True).encode()).hexdigest()


def reference(conn: sqlite3.Connection, model: str, version: int) -> dict[str, Any] | None:
    """The drift profile of ``model:version`` (None when it has none yet)."""
    row = conn.execute(
        "SELECT profile FROM drift_references WHERE model = ? AND version = ?", (model, version)
    ).fetchone()
    return None if row is None else dict(json.loads(row[0]))


def reference_keys(conn: sqlite3.Connection, model: str) -> dict[int, str]:
    """``{version: layout_key}`` of the model's versions with a reference stored (the key
    is ``''`` where the reference is unavailable: the stored profile says why)."""
    rows = conn.execute(
        "SELECT version, layout_key FROM drift_references WHERE model = ?", (model,)
    )
    return {int(v): str(k) for v, k in rows}


def put_reference(conn: sqlite3.Connection, model: str, version: int,
                  profile: dict[str, Any]) -> bool:  # fmt: skip
    """Store ``model:version``'s profile unless it has one; count the rows logged before.

    One transaction: the profile, then every answered row of that version already in
    the log added to the sketches and flags. Returns whether it was stored (False: a
    profile was already there, and it is kept).
    """
    unavailable = "unavailable" in profile  # {"unavailable": why}: nothing to count
    with transaction(conn):
        if reference(conn, model, version) is not None:
            return False
        conn.execute(
            "INSERT INTO drift_references (model, version, layout_key, profile, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (model, version, "" if unavailable else layout_key(profile), json.dumps(profile),
             time.time()),
        )  # fmt: skip
        if unavailable:
            return True
        after = 0
        while True:
            rows = conn.execute(
                f"{_ROWS} WHERE model = ? AND version = ? AND status < 400 AND id > ? "
                "ORDER BY id LIMIT ?", (model, version, after, BACKFILL_ROWS),
            ).fetchall()  # fmt: skip
            if not rows:
                return True
            _add(conn, model, version, profile, [(r[0], r[3], r[4], r[5]) for r in rows])
            after = rows[-1][0]


def roll_up(conn: sqlite3.Connection, after_id: int) -> None:
    """Add the answered log rows with ``id > after_id`` (inside the caller's transaction)."""
    rows = conn.execute(
        f"{_ROWS} WHERE id > ? AND status < 400 AND model IS NOT NULL ORDER BY id", (after_id,)
    ).fetchall()
    by_version: dict[tuple[str, int], list[tuple[int, float, str | None, str | None]]] = {}
    for log_id, model, version, ts, inputs, outputs in rows:
        by_version.setdefault((model, version or 0), []).append((log_id, ts, inputs, outputs))
    for (model, version), mine in by_version.items():
        profile = reference(conn, model, version)
        if profile is not None and "unavailable" not in profile:
            _add(conn, model, version, profile, mine)


def _add(conn: sqlite3.Connection, model: str, version: int, profile: dict[str, Any],
         rows: Sequence[tuple[int, float, str | None, str | None]]) -> None:  # fmt: skip
    from lepton_desktop.core.store import drift_sketch

    batch = drift_sketch.sketch(profile, rows, tuple(GRAINS.values()))
    for grain, seconds in GRAINS.items():
        for bucket, (count, slots) in batch.buckets[seconds].items():
            _merge(conn, grain, model, version, bucket, count, slots,
                   batch.unseen[seconds].get(bucket, {}))  # fmt: skip
    conn.executemany(
        "INSERT OR REPLACE INTO request_anomalies "
        "(log_id, model, version, minute, kinds, rows, score) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(log_id, model, version, minute, kinds, n, score)
         for log_id, minute, kinds, n, score in batch.flagged],
    )  # fmt: skip


def _merge(conn: sqlite3.Connection, grain: str, model: str, version: int, bucket: int,
           rows: int, slots: drift_sketch.Slots,
           unseen: dict[str, dict[str, int]]) -> None:  # fmt: skip
    from lepton_desktop.core.store import drift_sketch

    old = conn.execute(
        f"SELECT rows, slots, counts, sums, unseen FROM drift_{grain} "
        "WHERE model = ? AND version = ? AND minute = ?", (model, version, bucket),
    ).fetchone()  # fmt: skip
    if old is not None:
        rows += old[0]
        slots = slots + drift_sketch.decode(old[1], old[2], old[3])
        named = json.loads(old[4]) if old[4] else {}
        drift_sketch.merge_unseen(named, unseen)
        unseen = named
    conn.execute(
        f"INSERT OR REPLACE INTO drift_{grain} (model, version, minute, rows, slots, counts, "
        "sums, unseen) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (model, version, bucket, rows, *drift_sketch.encode(slots),
         json.dumps(unseen) if unseen else None),
    )  # fmt: skip


def sketch(
    conn: sqlite3.Connection,
    model: str,
    versions: Sequence[int],
    first_minute: int,
    last_minute: int,
    grain: str,
    size: int,
) -> tuple[int, np.ndarray, np.ndarray, dict[str, dict[str, int]]]:
    """``(rows, counts, sums, unseen)`` of ``versions`` over minutes ``first..last``.

    ``counts`` and ``sums`` are dense, one entry per slot. ``grain`` ``hours`` reads the
    hourly sketches (``first_minute`` should start an hour).
    """
    import numpy as np

    from lepton_desktop.core.store import drift_sketch

    counts, sums = np.zeros(size, dtype=np.int64), np.zeros(size)
    unseen: dict[str, dict[str, int]] = {}
    rows = 0
    for version in versions:
        cursor = conn.execute(
            f"SELECT rows, slots, counts, sums, unseen FROM drift_{grain} "
            "WHERE model = ? AND version = ? AND minute BETWEEN ? AND ?",
            (model, version, first_minute, last_minute),
        )
        for count, index, values, totals, named in cursor:
            rows += count
            drift_sketch.add_dense(counts, sums, drift_sketch.decode(index, values, totals))
            if named:
                drift_sketch.merge_unseen(unseen, json.loads(named))
    return rows, counts, sums, unseen


def anomaly_counts(
    conn: sqlite3.Connection,
    model: str | None,
    version: int | None,
    first_minute: int,
    last_minute: int,
) -> tuple[int, int, dict[str, int]]:
    """``(requests flagged, rows flagged, {kind: requests})`` over minutes ``first..last``."""
    from lepton_desktop.core.store import drift_sketch

    where, args = ("model != ''", ()) if model is None else ("model = ?", (model,))
    if version:
        where, args = f"{where} AND version = ?", (*args, version)
    kinds = ", ".join(f"TOTAL(kinds & {bit} != 0)" for bit in drift_sketch.KINDS.values())
    row = conn.execute(
        f"SELECT COUNT(*), TOTAL(rows), {kinds} FROM request_anomalies "
        f"WHERE {where} AND minute BETWEEN ? AND ?", (*args, first_minute, last_minute),
    ).fetchone()  # fmt: skip
    by_kind = {name: int(n) for name, n in zip(drift_sketch.KINDS, row[2:], strict=True)}
    return int(row[0]), int(row[1]), by_kind


def flagged_requests(conn: sqlite3.Connection, model: str, limit: int = 100
                     ) -> list[tuple[str, float, int, int, float | None]]:  # fmt: skip
    """The newest flagged requests: ``(request_id, ts, kinds, rows, score)``."""
    return conn.execute(
        "SELECT r.request_id, r.ts, a.kinds, a.rows, a.score FROM request_anomalies a "
        "JOIN request_log r ON r.id = a.log_id WHERE a.model = ? ORDER BY a.log_id DESC LIMIT ?",
        (model, limit),
    ).fetchall()
