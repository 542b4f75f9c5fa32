"""Named, ordered schema migrations (the simonw/llm pattern, with Optuna's checks).

``SCHEMA_VERSION`` is the number of migrations and is written to
``PRAGMA user_version``. A file with a larger number was written by a newer release
and is refused untouched; a file with a smaller one is upgraded only when the caller
asks, after a backup copy (see :mod:`lepton_desktop.core.project`).

Table names never clash with Optuna's RDB tables (``studies``, ``trials``,
``version_info``, ``alembic_version``, ``trial_*``, ``study_*``), which live in the
same file.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from lepton_desktop.core.store.db import APPLICATION_ID, transaction

Migration = Callable[[sqlite3.Connection], None]


def m001_initial(conn: sqlite3.Connection) -> None:
    """Project metadata and datasets with their versions and columns."""
    _run_script(
        conn,
        """
        CREATE TABLE lepton_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE datasets (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL CHECK (kind IN ('tabular', 'images', 'timeseries')),
            created_at REAL NOT NULL
        );
        CREATE TABLE dataset_versions (
            id INTEGER PRIMARY KEY,
            dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            parent_id INTEGER REFERENCES dataset_versions(id) ON DELETE SET NULL,
            status TEXT NOT NULL CHECK (status IN ('importing', 'ready')),
            source TEXT NOT NULL,
            n_rows INTEGER NOT NULL DEFAULT 0,
            target TEXT,
            time_column TEXT,
            operations TEXT NOT NULL DEFAULT '[]',
            pipeline TEXT NOT NULL DEFAULT '[]',
            splits TEXT,
            created_at REAL NOT NULL,
            UNIQUE (dataset_id, version)
        );
        CREATE TABLE dataset_columns (
            version_id INTEGER NOT NULL REFERENCES dataset_versions(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            dtype TEXT NOT NULL,
            stats TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (version_id, position)
        );
        """,
    )


def m002_jobs(conn: sqlite3.Connection) -> None:
    """Worker jobs with heartbeats, progress and a cancel flag; versions know their job."""
    _run_script(
        conn,
        """
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN
                ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted')),
            args TEXT NOT NULL DEFAULT '{}',
            progress_done INTEGER NOT NULL DEFAULT 0,
            progress_total INTEGER,
            message TEXT NOT NULL DEFAULT '',
            error TEXT,
            result TEXT,
            pid INTEGER,
            heartbeat_at REAL,
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            started_at REAL,
            finished_at REAL
        );
        CREATE INDEX jobs_by_status ON jobs(status);
        ALTER TABLE dataset_versions ADD COLUMN job_id INTEGER
            REFERENCES jobs(id) ON DELETE SET NULL;
        """,
    )


def m003_training(conn: sqlite3.Connection) -> None:
    """Training runs, their metrics and system samples, checkpoints, and model versions."""
    _run_script(
        conn,
        """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            job_id INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
            dataset_version_id INTEGER REFERENCES dataset_versions(id) ON DELETE SET NULL,
            dataset_ref TEXT NOT NULL,
            arch TEXT NOT NULL,
            task TEXT NOT NULL,
            config TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'paused', 'finished',
                'failed', 'stopped', 'interrupted')),
            control TEXT CHECK (control IN ('pause', 'stop')),
            device TEXT,
            error TEXT,
            epochs_done INTEGER NOT NULL DEFAULT 0,
            best_epoch INTEGER,
            best_value REAL,
            monitor TEXT,
            evaluation TEXT,
            archived INTEGER NOT NULL DEFAULT 0,
            notes TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            started_at REAL,
            finished_at REAL
        );
        CREATE TABLE run_metrics (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            step INTEGER NOT NULL,
            epoch INTEGER NOT NULL,
            value REAL,
            t REAL NOT NULL
        );
        CREATE INDEX run_metrics_by_run ON run_metrics(run_id, id);
        CREATE TABLE run_system (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            t REAL NOT NULL,
            cpu_percent REAL,
            rss_mb REAL,
            gpu_percent REAL,
            gpu_mem_mb REAL
        );
        CREATE INDEX run_system_by_run ON run_system(run_id, id);
        CREATE TABLE checkpoints (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('best', 'last')),
            epoch INTEGER NOT NULL,
            state BLOB NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (run_id, kind)
        );
        CREATE TABLE models (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL
        );
        CREATE TABLE model_versions (
            id INTEGER PRIMARY KEY,
            model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
            dataset_version_id INTEGER REFERENCES dataset_versions(id) ON DELETE SET NULL,
            arch TEXT NOT NULL,
            task TEXT NOT NULL,
            metrics TEXT NOT NULL DEFAULT '{}',
            params TEXT NOT NULL DEFAULT '{}',
            pipeline TEXT NOT NULL DEFAULT '[]',
            signature TEXT NOT NULL DEFAULT '{}',
            weights BLOB NOT NULL,
            notes TEXT NOT NULL DEFAULT '',
            archived INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            UNIQUE (model_id, version)
        );
        CREATE TABLE model_aliases (
            model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
            alias TEXT NOT NULL,
            version_id INTEGER NOT NULL REFERENCES model_versions(id) ON DELETE CASCADE,
            PRIMARY KEY (model_id, alias)
        )
        """,
    )


def m004_tuning(conn: sqlite3.Connection) -> None:
    """Tuning studies: our link to each Optuna study (whose own tables Optuna creates)."""
    _run_script(
        conn,
        """
        CREATE TABLE tuning_studies (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            optuna_study_id INTEGER,
            storage TEXT,
            dataset_version_id INTEGER REFERENCES dataset_versions(id) ON DELETE SET NULL,
            dataset_ref TEXT NOT NULL,
            arch TEXT NOT NULL,
            sampler TEXT NOT NULL,
            pruner TEXT NOT NULL,
            metric TEXT NOT NULL,
            objectives TEXT NOT NULL,
            directions TEXT NOT NULL,
            space TEXT NOT NULL,
            options TEXT NOT NULL DEFAULT '{}',
            n_trials INTEGER NOT NULL,
            jobs INTEGER NOT NULL DEFAULT 1,
            status TEXT NOT NULL CHECK (status IN
                ('created', 'running', 'stopped', 'finished', 'failed')),
            best_value REAL,
            best_params TEXT,
            best_trial INTEGER,
            best_model_id INTEGER REFERENCES model_versions(id) ON DELETE SET NULL,
            job_id INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
            error TEXT,
            finalizing_pid INTEGER,
            finalizing_at REAL,
            created_at REAL NOT NULL,
            finished_at REAL
        )
        """,
    )


def m005_serving(conn: sqlite3.Connection) -> None:
    """Deployments of the local server, their request log, and feedback on answers."""
    _run_script(
        conn,
        """
        CREATE TABLE deployments (
            id INTEGER PRIMARY KEY,
            job_id INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
            host TEXT NOT NULL,
            port INTEGER NOT NULL,
            url TEXT,
            token TEXT,
            status TEXT NOT NULL DEFAULT 'queued',
            models TEXT NOT NULL DEFAULT '[]',
            loaded TEXT NOT NULL DEFAULT '[]',
            options TEXT NOT NULL DEFAULT '{}',
            error TEXT,
            pid INTEGER,
            created_at REAL NOT NULL,
            started_at REAL,
            stopped_at REAL
        );
        CREATE TABLE request_log (
            id INTEGER PRIMARY KEY,
            deployment_id INTEGER REFERENCES deployments(id) ON DELETE CASCADE,
            ts REAL NOT NULL,
            request_id TEXT NOT NULL,
            method TEXT NOT NULL,
            path TEXT NOT NULL,
            protocol TEXT NOT NULL DEFAULT 'other',
            model TEXT,
            version INTEGER,
            status INTEGER NOT NULL,
            latency_ms REAL NOT NULL,
            n_rows INTEGER NOT NULL DEFAULT 0,
            inputs TEXT,
            outputs TEXT,
            error TEXT
        );
        CREATE INDEX request_log_deployment ON request_log (deployment_id, id);
        CREATE INDEX request_log_request_id ON request_log (request_id);
        CREATE TABLE feedback (
            id INTEGER PRIMARY KEY,
            deployment_id INTEGER REFERENCES deployments(id) ON DELETE CASCADE,
            request_id TEXT NOT NULL,
            ts REAL NOT NULL,
            label TEXT NOT NULL,
            row INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX feedback_request_id ON feedback (request_id)
        """,
    )


def m006_request_log_keys(conn: sqlite3.Connection) -> None:
    """The request log outlives its deployment, and a request is logged at most once.

    Deleting a deployment no longer deletes its requests and feedback (the tab asks
    first, and may keep them): the ``ON DELETE CASCADE`` foreign keys go. SQLite's
    ``ALTER TABLE`` cannot drop a foreign key, so sqlite-utils' ``transform()`` rebuilds
    the tables (new table, copy, swap, indexes recreated) inside this migration's
    transaction. Request ids become unique (a journal shipped twice stores each row
    once; duplicates cannot exist in older files, whose ids were uuid4s, but are removed
    first all the same), as does feedback's ``(request_id, row, ts)``.
    """
    from sqlite_utils import Database

    db = Database(conn)
    db.table("request_log").transform(drop_foreign_keys=["deployment_id"])
    db.table("feedback").transform(drop_foreign_keys=["deployment_id"])
    _run_script(
        conn,
        """
        DELETE FROM request_log WHERE id NOT IN
            (SELECT MIN(id) FROM request_log GROUP BY request_id);
        DROP INDEX IF EXISTS request_log_request_id;
        CREATE UNIQUE INDEX request_log_request_id ON request_log (request_id);
        DELETE FROM feedback WHERE id NOT IN
            (SELECT MIN(id) FROM feedback GROUP BY request_id, row, ts);
        CREATE UNIQUE INDEX feedback_once ON feedback (request_id, row, ts)
        """,
    )


#: Upper bounds of the latency histogram's buckets, in ms: 0.01 ms * 2^(i/4), so a
#: percentile read from the histogram is within about 9% of the true one (the width of
#: a bucket is 19%), from 10 µs to about 9 minutes. Prometheus' histograms work the same
#: way; a fixed ladder keeps the rollups additive over any window.
LATENCY_BUCKETS = [0.01 * 2 ** (i / 4) for i in range(96)]


def m007_monitoring_rollups(conn: sqlite3.Connection) -> None:
    """Per-minute rollups of the request log, kept by triggers, for the Monitoring tab.

    ``request_minutes`` counts requests per model, version, minute, status class and
    latency bucket (with the rows predicted and the latency sum); ``prediction_minutes``
    counts answered rows per model, version, minute and predicted label (classification)
    or keeps the sum, sum of squares, minimum and maximum of the predicted values
    (regression, forecasting; label ''). Triggers on ``request_log`` keep both in the
    same transaction as the rows, whoever writes them (the journal shipper, the replay
    on open, a migration), so a window of any length is read from at most
    minutes x buckets rows instead of the log itself; they are plain SQL (no function
    the app registers), so another tool writing the file keeps them right too. Deleting
    old log rows (retention) keeps the rollups: history outlives the rows it counts.
    Existing rows are rolled up here.
    """
    _run_script(
        conn,
        """
        CREATE TABLE latency_buckets (bucket INTEGER PRIMARY KEY, upper_ms REAL NOT NULL);
        CREATE TABLE request_minutes (
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
        CREATE INDEX request_minutes_by_minute ON request_minutes (minute);
        CREATE TABLE prediction_minutes (
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
    conn.executemany(
        "INSERT INTO latency_buckets (bucket, upper_ms) VALUES (?, ?)",
        list(enumerate(LATENCY_BUCKETS)),
    )
    # One statement with semicolons inside: not for _run_script, which splits on them.
    conn.execute(
        f"""
        CREATE TRIGGER request_log_rollups AFTER INSERT ON request_log BEGIN
            {_rollup_requests("(SELECT 1)", "")};
            {_rollup_predictions("(SELECT 1)")};
        END
        """
    )
    conn.execute(_rollup_requests("request_log AS NEW", "GROUP BY 1, 2, 3, 4, 5"))
    conn.execute(_rollup_predictions("request_log AS NEW"))


def _rollup_requests(source: str, group: str) -> str:
    """Add ``source``'s rows (``NEW``: one row in the trigger, the log in a backfill)."""
    bucket = (
        "COALESCE((SELECT MIN(bucket) FROM latency_buckets WHERE upper_ms >= NEW.latency_ms), "
        f"{len(LATENCY_BUCKETS) - 1})"
    )
    return f"""
        INSERT INTO request_minutes
            (model, version, minute, status_class, latency_bucket, n, rows, latency_sum)
        SELECT COALESCE(NEW.model, ''), COALESCE(NEW.version, 0), CAST(NEW.ts / 60 AS INTEGER),
               NEW.status / 100, {bucket}, COUNT(*), TOTAL(NEW.n_rows), TOTAL(NEW.latency_ms)
        FROM {source} WHERE true {group}
        ON CONFLICT DO UPDATE SET n = n + excluded.n, rows = rows + excluded.rows,
            latency_sum = latency_sum + excluded.latency_sum
    """


def _rollup_predictions(source: str) -> str:
    """Add the answers of ``source``'s rows (a JSON array of ``{label}`` or ``{value}``).

    Every JSON function is guarded by ``CASE`` (SQLite evaluates ``AND`` operands in
    no promised order): a log row whose outputs are not an array of objects counts
    nothing here, and never makes the insert of the row itself fail.
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
        INSERT INTO prediction_minutes
            (model, version, minute, label, n, value_sum, value_squares, value_min, value_max)
        SELECT model, version, minute, label, COUNT(*), TOTAL(value), TOTAL(value * value),
               MIN(value), MAX(value)
        FROM (
            SELECT COALESCE(NEW.model, '') AS model, COALESCE(NEW.version, 0) AS version,
                   CAST(NEW.ts / 60 AS INTEGER) AS minute, {label} AS label, {value} AS value
            FROM {source}, json_each({outputs}) AS answer WHERE answer.type = 'object'
        )
        WHERE true GROUP BY model, version, minute, label
        ON CONFLICT DO UPDATE SET n = n + excluded.n, value_sum = value_sum + excluded.value_sum,
            value_squares = value_squares + excluded.value_squares,
            value_min = MIN(COALESCE(value_min, excluded.value_min),
                            COALESCE(excluded.value_min, value_min)),
            value_max = MAX(COALESCE(value_max, excluded.value_max),
                            COALESCE(excluded.value_max, value_max))
    """

MIGRATIONS: list[Migration] = [
    m001_initial,
    m002_jobs,
    m003_training,
    m004_tuning,
    m005_serving,
    m006_request_log_keys,
    m007_monitoring_rollups,
]
SCHEMA_VERSION = len(MIGRATIONS)


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    # executescript() would COMMIT the caller's transaction first; a migration must
    # stay all-or-nothing, so run the statements one by one inside it.
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def user_version(conn: sqlite3.Connection) -> int:
    """Return the schema version stored in the file."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def initialize(conn: sqlite3.Connection, migrations: list[Migration] | None = None) -> None:
    """Turn an empty database into a project at the newest schema (or ``migrations``)."""
    with transaction(conn):
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(
            "CREATE TABLE lepton_migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
        )
        _apply(conn, migrations if migrations is not None else MIGRATIONS, start=0)


def upgrade(conn: sqlite3.Connection) -> list[str]:
    """Apply every pending migration in one transaction; return the names applied."""
    with transaction(conn):
        return _apply(conn, MIGRATIONS, start=user_version(conn))


def _apply(conn: sqlite3.Connection, migrations: list[Migration], start: int) -> list[str]:
    applied = []
    for number, migration in enumerate(migrations[start:], start=start + 1):
        migration(conn)
        conn.execute(
            "INSERT INTO lepton_migrations (name, applied_at) VALUES (?, ?)",
            (migration.__name__, time.time()),
        )
        conn.execute(f"PRAGMA user_version = {number}")
        applied.append(migration.__name__)
    return applied
