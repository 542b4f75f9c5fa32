"""The schema migrations of monitoring: rollups, alerts and server events, drift sketches.

Listed, in order, in :data:`lepton_desktop.core.store.migrations.MIGRATIONS` with the
others; kept apart only because the file of migrations grew past what reads well.
"""

from __future__ import annotations

import sqlite3

from lepton_desktop.core.store import quality_rollups, rollups
from lepton_desktop.core.store.db import run_script


def m007_monitoring_rollups(conn: sqlite3.Connection) -> None:
    """Rollups of the request log, per minute and per hour, for the Monitoring tab.

    ``request_minutes`` counts requests per model, version, minute, status class and
    latency bucket (with the rows predicted and the latency sum); ``prediction_minutes``
    counts answered rows per model, version, minute and predicted label (classification)
    or keeps the sum, sum of squares, minimum and maximum of the predicted values
    (regression, forecasting; label ''). ``request_hours`` and ``prediction_hours`` hold
    the same per hour (their ``minute`` is the hour's first minute), for long windows;
    ``served_versions`` knows every model version that answered, with its first and
    last minute. The log's writers add a batch's rows to all of them in the batch's own
    transaction (:func:`~lepton_desktop.core.store.rollups.roll_up`, a few grouped
    statements per batch), so a window of any length is read from at most bins x
    buckets rows instead of the log itself. Feedback gets the answer it labels (model,
    version, time, predicted label or value) and its own label decoded, and older
    labels of the same row are marked superseded, so live quality is one indexed
    aggregate. Deleting old log rows (retention) keeps the
    rollups: history outlives the rows it counts. Existing rows are rolled up here.
    """
    for grain in ("minutes", "hours"):
        run_script(
            conn,
            f"""
            CREATE TABLE request_{grain} (
                model TEXT NOT NULL,
                version INTEGER NOT NULL,
                minute INTEGER NOT NULL,
                status_class INTEGER NOT NULL,
                latency_bucket INTEGER NOT NULL,
                n INTEGER NOT NULL,
                rows INTEGER NOT NULL,
                latency_sum REAL NOT NULL,
                PRIMARY KEY (model, version, minute, status_class, latency_bucket)
            ) WITHOUT ROWID;
            CREATE INDEX request_{grain}_by_minute ON request_{grain} (minute);
            CREATE TABLE prediction_{grain} (
                model TEXT NOT NULL,
                version INTEGER NOT NULL,
                minute INTEGER NOT NULL,
                label TEXT NOT NULL,
                n INTEGER NOT NULL,
                value_sum REAL NOT NULL DEFAULT 0,
                value_squares REAL NOT NULL DEFAULT 0,
                value_min REAL,
                value_max REAL,
                PRIMARY KEY (model, version, minute, label)
            ) WITHOUT ROWID
            """,
        )
    run_script(
        conn,
        """
        CREATE TABLE served_versions (
            model TEXT NOT NULL,
            version INTEGER NOT NULL,
            requests INTEGER NOT NULL,
            first_minute INTEGER NOT NULL,
            last_minute INTEGER NOT NULL,
            PRIMARY KEY (model, version)
        ) WITHOUT ROWID;
        CREATE TABLE latency_buckets (bucket INTEGER PRIMARY KEY, upper_ms REAL NOT NULL);
        CREATE UNIQUE INDEX latency_buckets_by_bound ON latency_buckets (upper_ms)
        """,
    )
    conn.executemany(
        "INSERT INTO latency_buckets (bucket, upper_ms) VALUES (?, ?)",
        list(enumerate(rollups.LATENCY_BUCKETS)),
    )
    # Feedback resolved against the answer it labels (see rollups.resolve_feedback).
    for column in ("model TEXT", "version INTEGER", "request_ts REAL", "truth TEXT",
                   "truth_value REAL", "predicted TEXT", "predicted_value REAL",
                   "superseded INTEGER NOT NULL DEFAULT 0"):  # fmt: skip
        conn.execute(f"ALTER TABLE feedback ADD COLUMN {column}")
    conn.execute(
        "CREATE INDEX feedback_quality ON feedback (model, request_ts, version, superseded, "
        "truth, predicted, truth_value, predicted_value)"
    )
    rollups.roll_up(conn, after_id=0)
    rollups.resolve_feedback(conn, after_feedback=0, after_request=0)


def m008_alerts_and_server_events(conn: sqlite3.Connection) -> None:
    """Alert rules on monitored metrics, the alerts they raised, and server events.

    A rule watches one metric of a model (or all) over a window and fires when it
    crosses a threshold on enough rows; its webhook is stored sealed (core/secretbox).
    An event is an alert that fired (``firing``) and later ``resolved``; its webhook
    deliveries are recorded with the event. ``server_events`` records what the serving
    supervisor did (a server process exited, was restarted), for the Monitoring tab.
    """
    run_script(
        conn,
        """
        CREATE TABLE alert_rules (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            metric TEXT NOT NULL,
            model TEXT,
            version INTEGER,
            window TEXT NOT NULL,
            op TEXT NOT NULL,
            threshold REAL NOT NULL,
            min_rows INTEGER NOT NULL DEFAULT 0,
            cooldown_s REAL NOT NULL DEFAULT 0,
            webhook TEXT,
            action TEXT NOT NULL DEFAULT 'notify',
            enabled INTEGER NOT NULL DEFAULT 1,
            created_at REAL NOT NULL
        );
        CREATE TABLE alert_events (
            id INTEGER PRIMARY KEY,
            rule_id INTEGER NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
            state TEXT NOT NULL,
            value REAL,
            rows INTEGER NOT NULL DEFAULT 0,
            message TEXT NOT NULL,
            fired_at REAL NOT NULL,
            resolved_at REAL,
            deliveries TEXT NOT NULL DEFAULT '[]'
        );
        CREATE INDEX alert_events_by_rule ON alert_events (rule_id, fired_at);
        CREATE TABLE server_events (
            id INTEGER PRIMARY KEY,
            deployment_id INTEGER,
            ts REAL NOT NULL,
            kind TEXT NOT NULL,
            detail TEXT NOT NULL
        );
        CREATE INDEX server_events_by_time ON server_events (ts)
        """,
    )


def m011_drift_sketches(conn: sqlite3.Connection) -> None:
    """Drift references, drift sketches and per-request anomaly flags.

    ``drift_references`` holds one JSON profile per served model version, built from
    its training split (bin edges, reference counts, categories, ranges, the outlier
    model's parameters; never a pickle). ``drift_minutes`` and ``drift_hours`` hold,
    per model, version and minute (hour), the counts of the served inputs on the
    reference's bins as sparse blobs (slot numbers, counts, sums of the values) plus the
    unseen values named (capped); ``request_anomalies`` flags the logged requests whose rows
    fell outside the training range, carried unseen categories, missed features or
    scored as outliers. The log's writers add a batch's rows to all three in the
    batch's transaction (:func:`~lepton_desktop.core.store.drift.roll_up`); a reference
    created later takes in the rows logged before it, in its own transaction.
    """
    for grain in ("minutes", "hours"):
        conn.execute(
            f"""
            CREATE TABLE drift_{grain} (
                model TEXT NOT NULL,
                version INTEGER NOT NULL,
                minute INTEGER NOT NULL,
                rows INTEGER NOT NULL,
                slots BLOB NOT NULL,
                counts BLOB NOT NULL,
                sums BLOB NOT NULL,
                unseen TEXT,
                PRIMARY KEY (model, version, minute)
            )
            """
        )
    run_script(
        conn,
        """
        CREATE TABLE drift_references (
            model TEXT NOT NULL,
            version INTEGER NOT NULL,
            layout_key TEXT NOT NULL,
            profile TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (model, version)
        );
        CREATE TABLE request_anomalies (
            log_id INTEGER PRIMARY KEY,
            model TEXT NOT NULL,
            version INTEGER NOT NULL,
            minute INTEGER NOT NULL,
            kinds INTEGER NOT NULL,
            rows INTEGER NOT NULL,
            score REAL
        );
        CREATE INDEX request_anomalies_by_model
            ON request_anomalies (model, minute, version, kinds)
        """,
    )


def m013_quality_estimators(conn: sqlite3.Connection) -> None:
    """Confidence-based performance estimation: one calibration per model version, and
    an index to read a model's recent answers by time.

    ``quality_estimators`` holds, per classification version, the expected calibration
    error of its probabilities on the test split and, when that was high, the isotonic
    maps fitted on the validation split (plain numbers in JSON, never a pickle);
    ``request_log_model_time`` lets an estimate read the newest answers of one model in
    a window without scanning the log.
    """
    run_script(
        conn,
        """
        CREATE TABLE quality_estimators (
            model TEXT NOT NULL,
            version INTEGER NOT NULL,
            estimator TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (model, version)
        );
        CREATE INDEX request_log_model_time ON request_log (model, ts)
        """,
    )


def m017_request_log_browsing(conn: sqlite3.Connection) -> None:
    """Browsing the request log by model and time, and its retention setting.

    Three indexes let a filtered page of the log seek instead of scan: by model, by
    model and version (each in id order, so a page is a walk down the index, never a
    sort), and by time (a range of the log). ``request_log_retention`` holds
    the project's one setting (keep requests for ``days``, and/or the newest
    ``max_rows``), applied by a running server's watcher and when the project opens.
    """
    run_script(
        conn,
        """
        CREATE INDEX request_log_by_model ON request_log (model, id);
        CREATE INDEX request_log_by_version ON request_log (model, version, id);
        CREATE INDEX request_log_by_time ON request_log (ts);
        CREATE TABLE request_log_retention (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            days REAL CHECK (days IS NULL OR days > 0),
            max_rows INTEGER CHECK (max_rows IS NULL OR max_rows > 0)
        )
        """,
    )


def m019_live_quality_rollups(conn: sqlite3.Connection) -> None:
    """Live quality kept per minute, so a window over a million labels reads in well
    under a second.

    ``label_minutes`` counts the counted labels (resolved, newest of their row) per
    model, minute, version and (true, predicted) pair; ``error_minutes`` keeps rows,
    Σ|y-ŷ|, Σ(y-ŷ)², Σy and Σy² per model, minute and version. Triggers on ``feedback``
    keep both equal to the counted rows whatever adds, supersedes or deletes them
    (:mod:`~lepton_desktop.core.store.quality_rollups`); the feedback stored before is
    folded in here, in batches of ids. A later migration that rebuilds ``feedback``
    (sqlite-utils' ``transform``) must create the triggers again.
    """
    quality_rollups.create_tables(conn)
    quality_rollups.backfill(conn)
