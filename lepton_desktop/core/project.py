"""The Project facade: the one object the GUI, the CLI, workers and scripts hold.

``Project.open(path)`` checks the file before SQLite ever touches it (see
:func:`~lepton_desktop.core.store.db.read_header`), refuses what is not ours or is
too new, upgrades what is older only when asked (after a backup copy), and marks
jobs whose workers died as ``interrupted``. A Project (its connection) belongs to
the thread that opened it.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from lepton_desktop.core.entities import SPLIT_NAMES, DatasetVersion, Histogram, Job
from lepton_desktop.core.errors import (
    InvalidOptionError,
    LeptonError,
    ProjectExistsError,
    SchemaTooNewError,
    SchemaTooOldError,
)
from lepton_desktop.core.store import datasets as dataset_store
from lepton_desktop.core.store import jobs as job_store
from lepton_desktop.core.store import migrations
from lepton_desktop.core.store import serving as serving_store
from lepton_desktop.core.store import tuning as tuning_store
from lepton_desktop.core.store.db import (
    backup_to,
    checkpoint,
    connect,
    integrity_ok,
    read_header,
)

if TYPE_CHECKING:
    from lepton_desktop.core.datasets.prep import PrepOptions, PrepPreview
    from lepton_desktop.core.progress import Reporter
    from lepton_desktop.core.registry.registry import ModelRegistry
    from lepton_desktop.core.serving.manager import ServingManager
    from lepton_desktop.core.training.manager import RunManager, TrainResult
    from lepton_desktop.core.tuning.manager import TuningManager

SUFFIX = ".lepton"
#: A running job whose heartbeat is older than this is considered dead.
STALE_AFTER_S = 30.0


class Project:
    """An open project file.

    Attributes:
        path: the project file.
        upgraded_from: the schema version the file had before an upgrade, if any.
        backup_path: where the pre-upgrade copy was written, if any.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn
        self.upgraded_from: int | None = None
        self.backup_path: Path | None = None

    # -- opening -------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path | str) -> Project:
        """Create a new, empty project. Raises ProjectExistsError if the file exists."""
        path = Path(path)
        if path.exists():
            raise ProjectExistsError(f"{path}: already exists; open it or choose another name")
        if not path.parent.exists():
            raise InvalidOptionError(f"{path.parent}: no such folder")
        conn = connect(path)
        try:
            migrations.initialize(conn)
            checkpoint(conn)
        except BaseException:
            conn.close()
            path.unlink(missing_ok=True)
            raise
        return cls(path, conn)

    @classmethod
    def open(cls, path: Path | str, *, upgrade: bool = False) -> Project:
        """Open an existing project.

        Args:
            path: the ``.lepton`` file.
            upgrade: apply pending migrations to an older file (a backup is made first).

        Raises:
            NotAProjectError: not a Lepton project; the file is left untouched.
            SchemaTooNewError: written by a newer release; the file is left untouched.
            SchemaTooOldError: needs an upgrade and ``upgrade`` is False.
        """
        path = Path(path)
        _, version = read_header(path)
        if version > migrations.SCHEMA_VERSION:
            raise SchemaTooNewError(
                f"{path}: made by a newer Lepton Desktop (schema {version}, this release "
                f"reads up to {migrations.SCHEMA_VERSION}); update the app to open it"
            )
        if version < migrations.SCHEMA_VERSION and not upgrade:
            raise SchemaTooOldError(
                f"{path}: made by an older Lepton Desktop (schema {version}); it must be "
                f"upgraded to schema {migrations.SCHEMA_VERSION} (a backup is kept)"
            )
        backup = cls._backup(path, version) if version < migrations.SCHEMA_VERSION else None
        project = cls(path, connect(path))
        if backup is not None:
            migrations.upgrade(project.conn)
            checkpoint(project.conn)
            project.upgraded_from, project.backup_path = version, backup
        project.recover_stale_jobs()
        return project

    @staticmethod
    def needs_upgrade(path: Path | str) -> bool:
        """True when the file is a project with an older schema (checks the header only)."""
        return read_header(Path(path))[1] < migrations.SCHEMA_VERSION

    @staticmethod
    def _backup(path: Path, old_version: int) -> Path:
        # Copied through a read-only connection before anything (even the switch to
        # WAL) touches the original, so the backup is the file exactly as it was.
        stamp = time.strftime("%Y%m%d-%H%M%S")
        backup = path.with_name(f"{path.stem}.schema{old_version}-{stamp}.bak{SUFFIX}")
        wal = path.with_name(path.name + "-wal")
        if not wal.exists() or wal.stat().st_size == 0:
            shutil.copy2(path, backup)  # byte for byte
            return backup
        source = connect(path, readonly=True)  # committed pages may still sit in the WAL
        try:
            backup_to(source, backup)
        finally:
            source.close()
        return backup

    @property
    def runs(self) -> RunManager:
        """Training runs: queue, watch, pause, resume, stop, delete."""
        from lepton_desktop.core.training.manager import RunManager

        return RunManager(self)

    @property
    def models(self) -> ModelRegistry:
        """Registered model versions and their aliases."""
        from lepton_desktop.core.registry.registry import ModelRegistry

        return ModelRegistry(self)

    @property
    def tuning(self) -> TuningManager:
        """Tuning studies: create, run, stop, extend, promote the best."""
        from lepton_desktop.core.tuning.manager import TuningManager

        return TuningManager(self)

    @property
    def serving(self) -> ServingManager:
        """Deployments of the local server and their request logs."""
        from lepton_desktop.core.serving.manager import ServingManager

        return ServingManager(self)

    def train(
        self, dataset: str, *, reporter: Reporter | None = None, **options: Any
    ) -> TrainResult:
        """Train a model now, in this process, as ``lepton-desktop train`` does.

        Args:
            dataset: ``name`` or ``name:version``.
            reporter: receives per-epoch progress.
            **options: :class:`~lepton_desktop.core.training.config.TrainConfig` fields,
                e.g. ``arch="mlp", epochs=30, batch_size=64, loss="cross_entropy",
                optimizer="adam"``.

        Returns:
            The finished run with ``.metrics`` (test split) and ``.model`` (the version).

        Raises:
            InvalidOptionError: impossible options; nothing is written.
            LeptonError: training failed (the run records why).
        """
        from lepton_desktop.core.jobs import run_job
        from lepton_desktop.core.training.config import TrainConfig
        from lepton_desktop.core.training.manager import TrainResult
        from lepton_desktop.core.training.service import train_job

        run, job_id = self.runs.queue(dataset, TrainConfig.from_dict(options))
        job = run_job(self.path, job_id, train_job, echo=reporter)
        if job.status != "succeeded" or job.result is None:
            raise LeptonError(job.error or f"training ended {job.status}")
        result = job.result
        return TrainResult(
            self.runs.get(run.id),
            result["metrics"],
            result["baseline"],
            self.models.get(result["model"]),
        )

    def close(self) -> None:
        """Close the connection (checkpointing the WAL)."""
        self.conn.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        """The schema version of the open file."""
        return migrations.user_version(self.conn)

    def integrity_ok(self) -> bool:
        """Run SQLite's integrity check."""
        return integrity_ok(self.conn)

    # -- datasets ------------------------------------------------------------------

    def datasets(self) -> list[DatasetVersion]:
        """Every ready dataset version."""
        return dataset_store.list_versions(self.conn)

    def dataset(self, ref: str) -> DatasetVersion:
        """The version ``name`` (latest) or ``name:version``. Raises NotFoundError."""
        return dataset_store.resolve(self.conn, ref)

    def dataset_by_id(self, version_id: int) -> DatasetVersion:
        """A version by its id. Raises NotFoundError."""
        return dataset_store.get_version(self.conn, version_id)

    def import_dataset(
        self,
        source: Path | str,
        name: str,
        *,
        kind: str | None = None,
        target: str | None = None,
        time_column: str | None = None,
        job_id: int | None = None,
        reporter: Reporter | None = None,
    ) -> DatasetVersion:
        """Import a file or image folder as a new dataset version (runs here, now).

        The GUI and CLI run this inside a worker job; scripts may call it directly.

        Raises:
            DataImportError: the source cannot be imported; the project is unchanged.
        """
        from lepton_desktop.core.datasets.importing import import_source

        return import_source(
            self.conn,
            Path(source),
            name=name,
            kind=kind,
            target=target,
            time_column=time_column,
            job_id=job_id,
            reporter=reporter,
        )

    def prep(
        self,
        ref: str,
        options: PrepOptions,
        *,
        job_id: int | None = None,
        reporter: Reporter | None = None,
    ) -> DatasetVersion:
        """Preprocess a version into a new one (dedupe, fill, scale, one-hot, split)."""
        from lepton_desktop.core.datasets.prep import prepare

        return prepare(self.conn, self.dataset(ref), options, job_id=job_id, reporter=reporter)

    def prep_preview(self, version: DatasetVersion, options: PrepOptions) -> PrepPreview:
        """Rows and missing cells before and after ``options``, without writing anything.

        Raises:
            InvalidOptionError: the options do not fit ``version``.
        """
        from lepton_desktop.core.datasets.prep import preview

        return preview(self.conn, version, options)

    def rows(self, version: DatasetVersion, start: int, count: int) -> list[tuple[Any, ...]]:
        """A page of rows (values, then the split index or None)."""
        return dataset_store.fetch_rows(self.conn, version, start, count)

    def histogram(self, version: DatasetVersion, column: str, bins: int = 30) -> Histogram:
        """Histogram (numeric) or top values (otherwise) of one column."""
        return dataset_store.histogram(self.conn, version, version.column(column), bins)

    def series(
        self, version: DatasetVersion, columns: list[str], max_points: int = 5000
    ) -> list[tuple[Any, ...]]:
        """Thinned rows of ``columns`` for a line chart."""
        cols = [version.column(c) for c in columns]
        return dataset_store.series(self.conn, version, cols, max_points)

    def image(self, version: DatasetVersion, row: int) -> bytes:
        """The encoded image of row ``row`` of an image dataset."""
        return dataset_store.fetch_image(self.conn, version, row)

    def label_counts(self, version: DatasetVersion, column: str) -> dict[str, int]:
        """Rows per value of ``column`` (class counts of an image dataset)."""
        return dataset_store.label_counts(self.conn, version, version.column(column))

    def delete_dataset(self, name: str) -> None:
        """Delete a dataset and all its versions."""
        dataset_store.delete_dataset(self.conn, name)

    # -- jobs ----------------------------------------------------------------------

    def create_job(self, kind: str, args: dict[str, Any]) -> int:
        """Queue a job for a worker process; return its id."""
        return job_store.create(self.conn, kind, args)

    def job(self, job_id: int) -> Job:
        """One job. Raises NotFoundError."""
        return job_store.get(self.conn, job_id)

    def jobs(self, *, active_only: bool = False) -> list[Job]:
        """Recent jobs, newest first."""
        return job_store.list_jobs(self.conn, active_only=active_only)

    def cancel_job(self, job_id: int) -> None:
        """Ask a job's worker to stop at its next progress report.

        A job still queued is cancelled at once (and a run waiting for it becomes
        ``interrupted``, so it can be resumed, archived or deleted).
        """
        from lepton_desktop.core.store import runs as run_store

        job_store.request_cancel(self.conn, job_id)
        run_store.interrupt_orphans(self.conn)
        serving_store.interrupt_orphans(self.conn)

    def forget_job(self, job_id: int) -> None:
        """Delete a finished job's row (after its outcome was shown to the user)."""
        job_store.delete(self.conn, job_id)

    def recover_stale_jobs(self, stale_after: float = STALE_AFTER_S) -> list[int]:
        """Mark running jobs whose worker is gone as interrupted and clean up after them.

        A worker is gone when its process no longer exists, or when its heartbeat is
        older than ``stale_after`` seconds (a hung worker).
        Returns the ids of the jobs marked.
        """
        now = time.time()
        dead = [
            j.id
            for j in job_store.stale_running(self.conn, now + 1)
            if not _alive(j.pid) or (j.heartbeat_at or 0) < now - stale_after
        ]
        for job_id in dead:
            job_store.finish(
                self.conn, job_id, "interrupted", error="the worker stopped unexpectedly"
            )
        from lepton_desktop.core.store import runs as run_store

        run_store.interrupt_orphans(self.conn)
        serving_store.interrupt_orphans(self.conn)
        tuning_store.stop_orphans(self.conn)
        for version_id in dataset_store.unfinished_versions(self.conn):
            dataset_store.discard_version(self.conn, version_id)
        return dead

    # -- summary -------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """The summary printed by ``lepton-desktop info --json`` (DESIGN §4)."""
        return {
            "path": str(self.path),
            "schema_version": self.schema_version,
            "datasets": [_dataset_info(v) for v in self.datasets()],
            "runs": [
                {
                    "id": r.id,
                    "status": r.status,
                    "dataset": r.dataset_ref,
                    "arch": r.arch,
                    "task": r.task,
                    "best_value": r.best_value,
                }
                for r in self.runs.list(include_archived=True)
            ],
            "models": self.models.summary(),
            "studies": self.tuning.summary(),
            "jobs": [{"id": j.id, "kind": j.kind, "status": j.status} for j in self.jobs()[:20]],
        }


def _dataset_info(version: DatasetVersion) -> dict[str, Any]:
    splits = version.splits or {}
    return {
        "name": version.name,
        "version": version.version,
        "ref": version.ref,
        "kind": version.kind,
        "rows": version.n_rows,
        "columns": len(version.columns),
        "column_names": [c.name for c in version.columns],
        "target": version.target,
        "time_column": version.time_column,
        "splits": {name: splits.get(name, 0) for name in SPLIT_NAMES},
        "parent": version.parent_id,
        "operations": [op["op"] for op in version.operations],
    }


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    if pid == os.getpid():
        return True
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
