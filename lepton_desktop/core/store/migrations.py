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

from lepton_desktop.core.store.db import APPLICATION_ID, run_script, transaction
from lepton_desktop.core.store.migrations_monitoring import (
    m007_monitoring_rollups,
    m008_alerts_and_server_events,
    m011_drift_sketches,
    m013_quality_estimators,
    m017_request_log_browsing,
    m019_live_quality_rollups,
)

Migration = Callable[[sqlite3.Connection], None]


def m001_initial(conn: sqlite3.Connection) -> None:
    """Project metadata and datasets with their versions and columns."""
    run_script(
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
    run_script(
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
    run_script(
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
    run_script(
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
    run_script(
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
    run_script(
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


#: What the request log's full-text index covers: the request's id, path, model,
#: status and error, and the start of its captured inputs and outputs.
REQUEST_LOG_SEARCHED = (
    "request_id", "path", "model", "status", "error", "searchable_inputs",
    "searchable_outputs",
)  # fmt: skip
#: Characters of a request's captured inputs (and outputs) that are indexed: a request
#: may carry megabytes (a base64 image, a large batch), and indexing all of it would
#: make the index as large as the log, of tokens nobody searches for.
SEARCHED_CHARS = 4096


def m009_full_text_search(conn: sqlite3.Connection) -> None:
    """Full-text search (SQLite FTS5) of the request log and of datasets' names.

    sqlite-utils' ``enable_fts`` builds each index (``request_log_fts``,
    ``datasets_fts``, ``dataset_versions_fts``: external-content tables over the rows,
    filled from the existing ones) and its triggers, so every row inserted, updated
    or deleted later is indexed in the same transaction as the row itself; from 4.0
    on its statements join this migration's transaction instead of committing it.
    The request log's captured inputs and outputs are indexed through two generated
    (virtual, never stored) columns holding their first :data:`SEARCHED_CHARS`
    characters. The triggers belong to the tables: a later migration that rebuilds
    one of them (``transform()``) must enable its index again.
    """
    from sqlite_utils import Database

    for column in ("inputs", "outputs"):
        conn.execute(
            f"ALTER TABLE request_log ADD COLUMN searchable_{column} TEXT "
            f"GENERATED ALWAYS AS (substr({column}, 1, {SEARCHED_CHARS})) VIRTUAL"
        )
    db = Database(conn)
    db.table("request_log").enable_fts(REQUEST_LOG_SEARCHED, create_triggers=True)
    db.table("datasets").enable_fts(["name"], create_triggers=True)
    db.table("dataset_versions").enable_fts(["source", "target"], create_triggers=True)


def m010_hashed_tokens(conn: sqlite3.Connection) -> None:
    """Deployments keep their bearer token's SHA-256 digest, never the token itself.

    The server checks a request's bearer against the digest, so nothing in the file
    lets its reader into a server; tokens older files stored are replaced by theirs.
    """
    import hashlib

    rows = conn.execute(
        "SELECT id, token FROM deployments WHERE token IS NOT NULL AND token NOT LIKE 'sha256:%'"
    ).fetchall()
    conn.executemany(
        "UPDATE deployments SET token = ? WHERE id = ?",
        [("sha256:" + hashlib.sha256(token.encode()).hexdigest(), i) for i, token in rows],
    )


def m012_job_owners(conn: sqlite3.Connection) -> None:
    """Each job names the process that answers for it, with that process's start time.

    While queued that is its launcher (the GUI, a command, a ``tune`` job starting
    trial workers), once claimed its worker. A queued job whose launcher died before a
    worker claimed it was queued forever; now the next opening sees the owner gone
    (the start time tells a reused pid from the owner) and recovers the job.
    """
    run_script(
        conn,
        """
        ALTER TABLE jobs ADD COLUMN owner_pid INTEGER;
        ALTER TABLE jobs ADD COLUMN owner_started_at REAL
        """,
    )


MIGRATIONS: list[Migration] = [
    m001_initial,
    m002_jobs,
    m003_training,
    m004_tuning,
    m005_serving,
    m006_request_log_keys,
    m007_monitoring_rollups,
    m008_alerts_and_server_events,
    m009_full_text_search,
    m010_hashed_tokens,
    m011_drift_sketches,
    m012_job_owners,
    m013_quality_estimators,
    m017_request_log_browsing,
    m019_live_quality_rollups,
]
SCHEMA_VERSION = len(MIGRATIONS)


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
