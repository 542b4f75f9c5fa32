"""The Project facade: the one object the GUI, the CLI, workers and scripts hold.

``Project.open(path)`` checks the file before SQLite ever touches it (see
:mod:`~lepton_desktop.core.store.files`), refuses what is not ours or is too new,
upgrades what is older only when asked (after a backup copy), and marks jobs whose
workers died as ``interrupted``. A Project (its connection) belongs to the thread
that opened it.

The facade sits **on top** of core's feature packages: it hands each of them a
:class:`~lepton_desktop.core.context.ProjectContext` (the file and its connection),
and nothing below it imports it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lepton_desktop.core import jobs as job_lifecycle
from lepton_desktop.core.context import ProjectContext
from lepton_desktop.core.entities import (
    SPLIT_NAMES,
    DatasetVersion,
    Histogram,
    Job,
)
from lepton_desktop.core.errors import DamagedProjectError, LeptonError
from lepton_desktop.core.project_monitoring import MonitoringFacade
from lepton_desktop.core.store import cipher, db, files, health, keys, migrations
from lepton_desktop.core.store import datasets as dataset_store
from lepton_desktop.core.store import jobs as job_store
from lepton_desktop.core.store.db import integrity_ok

if TYPE_CHECKING:
    import sqlite3

    from lepton_desktop.core.datasets.prep import PrepOptions, PrepPreview
    from lepton_desktop.core.explain import Explanation
    from lepton_desktop.core.export import ExportResult
    from lepton_desktop.core.monitoring.requests import RequestLog
    from lepton_desktop.core.progress import Reporter
    from lepton_desktop.core.registry.registry import ModelRegistry
    from lepton_desktop.core.serving.manager import ServingManager
    from lepton_desktop.core.training.manager import RunManager, TrainResult
    from lepton_desktop.core.tuning.manager import TuningManager

SUFFIX = files.SUFFIX
#: A running job whose heartbeat is older than this is considered dead.
STALE_AFTER_S = job_lifecycle.STALE_AFTER_S
#: Seconds an opening spends at most deleting requests the retention no longer keeps
#: (a running server's watcher deletes the rest, a batch at a time).
OPEN_RETENTION_S = 1.0


class Project(MonitoringFacade):
    """An open project file.

    Attributes:
        path: the project file.
        conn: its connection (for scripts that read the file themselves).
        ctx: what the feature modules get: the path and the connection.
        upgraded_from: the schema version the file had before an upgrade, if any.
        backup_path: where the pre-upgrade copy was written, if any.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn
        self.ctx = ProjectContext(path, conn)
        self.upgraded_from: int | None = None
        self.backup_path: Path | None = None
        self._explaining: dict[int, Any] = {}  # versions kept loaded (core.explain)

    # -- opening -------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path | str) -> Project:
        """Create a new, empty project. Raises ProjectExistsError if the file exists."""
        path = Path(path)
        return cls(path, files.create_file(path))

    @classmethod
    def open(cls, path: Path | str, *, upgrade: bool = False, read_only: bool = False) -> Project:
        """Open an existing project.

        Args:
            path: the ``.lepton`` file.
            upgrade: apply pending migrations to an older file (a backup is made first).
            read_only: look only: every write is refused by SQLite, and nothing is
                recovered or replayed on open (another app edits the file).

        Raises:
            NotAProjectError: not a Lepton project; the file is left untouched.
            SchemaTooNewError: written by a newer release; the file is left untouched.
            SchemaTooOldError: needs an upgrade and ``upgrade`` is False.
        """
        path = Path(path)
        opened = files.open_file(path, upgrade=upgrade, read_only=read_only)
        project = cls(path, opened.conn)
        project.upgraded_from, project.backup_path = opened.upgraded_from, opened.backup_path
        if read_only:
            return project
        try:
            project.recover_stale_jobs()
            project.replay_request_journals()
            project.request_log.apply_retention(budget_s=OPEN_RETENTION_S)
        except BaseException:
            project.close()  # (a damaged file fails here: leave no connection behind)
            raise
        return project

    @staticmethod
    def damage_of(path: Path | str | None, exc: BaseException) -> DamagedProjectError | None:
        """The error to report if ``exc``, raised while ``path`` was in use, means damage.

        Checks the file read-only when ``exc`` alone does not tell; None means the
        file is sound (so ``exc`` is a bug, to be raised as it is).
        """
        return health.damage_of(Path(path) if path is not None else None, exc)

    def check_intact(self, *versions: DatasetVersion) -> None:
        """Refuse work that would write to a damaged file, before it writes anything.

        SQLite's quick check of the project's records and of the rows of ``versions``
        (the datasets the work will read).

        Raises:
            DamagedProjectError: naming what was found and the backup to restore.
        """
        health.check_intact(self.conn, self.path, [v.table for v in versions])

    # -- encrypted project files (core/store/cipher.py) ---------------------------------

    @staticmethod
    def is_encrypted(path: Path | str) -> bool:
        """Whether the project file is encrypted (SQLCipher); False for a missing file."""
        return db.is_encrypted(Path(path))

    @staticmethod
    def needs_passphrase(path: Path | str) -> bool:
        """Whether the project is encrypted and this process holds no key for it yet."""
        return db.is_encrypted(Path(path)) and keys.key_for(Path(path)) is None

    @staticmethod
    def unlock(path: Path | str, passphrase: str, *, remember: bool = False) -> str | None:
        """Hold the key of an encrypted project for this process and the workers it starts.

        ``remember``: save the passphrase in the OS keyring too; returns why not when
        there is no usable keyring (None otherwise).

        Raises:
            WrongPassphraseError: the passphrase does not open it (nothing was written).
        """
        cipher.unlock(Path(path), passphrase)
        return keys.save_passphrase(Path(path), passphrase) if remember else None

    @staticmethod
    def saved_passphrase(path: Path | str) -> str | None:
        """The passphrase the OS keyring holds for the project, if any."""
        return keys.saved_passphrase(Path(path))

    @staticmethod
    def encrypt_file(
        path: Path | str, passphrase: str, *, remember: bool = False
    ) -> cipher.Conversion:
        """Encrypt a closed project in place (SQLCipher 4; see :mod:`core.store.cipher`)."""
        result = cipher.encrypt(Path(path), passphrase)
        if remember and (reason := keys.save_passphrase(Path(path), passphrase)):
            result = dataclasses.replace(result, notes=(*result.notes, reason))
        return result

    @staticmethod
    def decrypt_file(path: Path | str) -> cipher.Conversion:
        """Decrypt a closed, unlocked project in place; forget its saved passphrase."""
        result = cipher.decrypt(Path(path))
        keys.drop_saved_passphrase(Path(path))
        return result

    @staticmethod
    def needs_upgrade(path: Path | str) -> bool:
        """True when the file is a project with an older schema (checks the header only)."""
        return files.needs_upgrade(Path(path))

    @property
    def runs(self) -> RunManager:
        """Training runs: queue, watch, pause, resume, stop, delete."""
        from lepton_desktop.core.training.manager import RunManager

        return RunManager(self.ctx)

    @property
    def models(self) -> ModelRegistry:
        """Registered model versions and their aliases."""
        from lepton_desktop.core.registry.registry import ModelRegistry

        return ModelRegistry(self.ctx)

    @property
    def tuning(self) -> TuningManager:
        """Tuning studies: create, run, stop, extend, promote the best."""
        from lepton_desktop.core.tuning.manager import TuningManager

        return TuningManager(self.ctx)

    @property
    def serving(self) -> ServingManager:
        """Deployments of the local server and their request logs."""
        from lepton_desktop.core.serving.manager import ServingManager

        return ServingManager(self.ctx)

    @property
    def request_log(self) -> RequestLog:
        """The request log: filtered pages, export, retention, deleting deployments."""
        from lepton_desktop.core.monitoring.requests import RequestLog

        return RequestLog(self.ctx)

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
            The finished run with ``.metrics`` (test split), ``.baseline`` (the naive
            guess), ``.strong_baseline`` (a classical model on the same arrays, unless
            ``strong_baseline=False``) and ``.model`` (the version).

        Raises:
            InvalidOptionError: impossible options; nothing is written.
            LeptonError: training failed (the run records why).
        """
        from lepton_desktop.core.training import strong_baseline
        from lepton_desktop.core.training.config import TrainConfig
        from lepton_desktop.core.training.manager import TrainResult

        config = TrainConfig.from_dict(options)
        if config.strong_baseline:  # scikit-learn's import beside torch's, in a child
            strong_baseline.prewarm()
        run, job_id = self.runs.queue(dataset, config)
        from lepton_desktop.core.training.service import run_training

        def train(ctx: ProjectContext, job: Job, job_reporter: Reporter) -> dict[str, Any]:
            return run_training(ctx, run.id, job_reporter)

        job = job_lifecycle.run_job(self.path, job_id, train, echo=reporter)
        if job.status != "succeeded" or job.result is None:
            raise LeptonError(job.error or f"training ended {job.status}")
        result = job.result
        return TrainResult(
            self.runs.get(run.id),
            result["metrics"],
            result["baseline"],
            self.models.get(result["model"]),
            result.get("strong_baseline"),
        )

    def export(
        self,
        model: str,
        format: str,
        out: Path | str,
        *,
        reporter: Reporter | None = None,
        **checks: Any,
    ) -> ExportResult:
        """Export a model version as ``lepton-desktop export`` does (checked, atomic).

        Args:
            model: ``name``, ``name:N`` or ``name@alias``.
            format: torchscript, onnx, bundle or triton.
            out: the file to write (triton: the model repository directory).
            reporter: progress, and cancellation between steps.
            **checks: ``tolerance``/``reference`` of
                :func:`~lepton_desktop.core.export.export_model`.

        Raises:
            InvalidOptionError, NotFoundError, ExportMismatchError, CancelledError:
                see :func:`~lepton_desktop.core.export.export_model`; nothing is kept.
        """
        from lepton_desktop.core.export import export_model

        return export_model(self.ctx, model, format, out, reporter, **checks)

    def predict(self, model: str, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Answer raw records with a model version, here, as the server's ``/predict`` does.

        The same :class:`~lepton_desktop.core.inference.predictor.Predictor` the server
        runs: the version's stored preprocessing is applied to ``records`` (values as
        in the imported dataset), and the answers decoded the same way.

        Args:
            model: ``name``, ``name:N`` or ``name@alias``.
            records: column name -> raw value, one mapping per row.

        Returns:
            One answer per record: ``{"label", "probabilities"}`` for classification,
            ``{"value"}`` otherwise.

        Raises:
            NotFoundError: no such model version; InvalidInputError: a record the
                model cannot read (the message names the problem).
        """
        from lepton_desktop.core.inference.predictor import ModelParts, Predictor

        return Predictor(ModelParts.from_project(self.ctx, model)).predict(records)

    def explain(
        self,
        model: str,
        *,
        row: int | None = None,
        record: dict[str, Any] | None = None,
        image: Path | str | None = None,
        request_id: str | None = None,
        method: str = "ig",
    ) -> Explanation:
        """Explain one answer of a model version, as ``lepton-desktop explain`` does.

        Exactly one input: ``row`` (the N-th test row, image or window), ``record`` (a
        raw record, as ``/predict`` takes it), ``image`` (a file) or ``request_id`` (a
        logged request's captured inputs). ``method``: ig (Integrated Gradients, the
        default), gradcam (image models) or occlusion. Nothing is written.

        Returns:
            The :class:`~lepton_desktop.core.explain.Explanation`: attributions per source
            column, a heat map or per time step, with the method and baseline named.

        Raises:
            InvalidOptionError, NotFoundError, InvalidInputError: see
                :func:`lepton_desktop.core.explain.explain`.
        """
        from lepton_desktop.core.explain import explain

        return explain(self.ctx, model, row=row, record=record, image=image,
                       request_id=request_id, method=method, loaded=self._explaining)  # fmt: skip

    def explain_rows(self, model: str) -> tuple[Any, list[Any], Any]:
        """A model version's test rows (raw records, true answers), its answers to them,
        and its loaded explainer (to explain many rows without loading it again).

        Returns:
            The :class:`~lepton_desktop.core.explain.data.RowSet`, one answer (a label or
            a value) per row, and the :class:`~lepton_desktop.core.explain.Explainer`;
            ``explainer.explain(rows.record(n), method)`` is ``explain(model, row=n)``.
        """
        from lepton_desktop.core.explain import predicted_test_rows

        return predicted_test_rows(self.ctx, model, self._explaining)

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

    def check_import(
        self,
        source: Path | str,
        name: str,
        *,
        kind: str | None = None,
        target: str | None = None,
        time_column: str | None = None,
    ) -> None:
        """Refuse an import that cannot succeed, before its job is queued (reads only).

        Raises:
            DataImportError, InvalidOptionError: see
                :func:`~lepton_desktop.core.datasets.importing.check_import`.
        """
        from lepton_desktop.core.datasets.importing import check_import

        check_import(
            self.conn, Path(source), name=name, kind=kind, target=target, time_column=time_column
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
        job_lifecycle.cancel_job(self.conn, job_id)

    def forget_job(self, job_id: int) -> None:
        """Delete a finished job's row (after its outcome was shown to the user)."""
        job_store.delete(self.conn, job_id)

    def recover_stale_jobs(self, stale_after: float = STALE_AFTER_S) -> list[int]:
        """Mark running jobs whose worker is gone as interrupted and clean up after them.

        A worker is gone when its process no longer exists, or when its heartbeat is
        older than ``stale_after`` seconds (a hung worker).
        Returns the ids of the jobs marked.
        """
        return job_lifecycle.recover_stale_jobs(self.conn, stale_after)

    def replay_request_journals(self) -> int:
        """Store the request-log rows that servers killed before shipping them left.

        A server journals each request before answering it (``core/serving/journal``);
        rows of one that died are stored here, so a request answered is a request
        logged. Returns the rows stored (0, at the cost of one ``stat``, when none).
        """
        from lepton_desktop.core.serving.journal import journal_dir, replay_orphans
        from lepton_desktop.core.store.db import connect

        if not journal_dir(self.path).is_dir():
            return 0
        return replay_orphans(self.path, lambda: connect(self.path))

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
                    "strong_baseline": _strong_baseline(r.evaluation),
                }
                for r in self.runs.list(include_archived=True)
            ],
            "models": self.models.summary(),
            "studies": self.tuning.summary(),
            "jobs": [{"id": j.id, "kind": j.kind, "status": j.status} for j in self.jobs()[:20]],
        }


def _strong_baseline(evaluation: dict[str, Any] | None) -> dict[str, Any] | None:
    # ``{name, metric, gain}``: gain is the network's test headline minus the strong
    # baseline's (positive: the network wins); None before evaluation or when skipped.
    strong = (evaluation or {}).get("strong_baseline")
    if not strong:
        return None
    return {"name": strong["name"], "metric": strong["gain"]["metric"],
            "gain": strong["gain"]["value"]}  # fmt: skip


def _dataset_info(version: DatasetVersion) -> dict[str, Any]:
    from lepton_desktop.core.datasets.pii_found import findings_of

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
        "pii": [f.to_dict() for f in findings_of(version.columns)],
    }
