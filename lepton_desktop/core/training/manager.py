"""``project.runs``: queue, watch, pause, resume, stop, archive and delete training runs."""

from __future__ import annotations

import builtins
import dataclasses
from typing import TYPE_CHECKING, Any

from lepton_desktop.core.entities import MetricPoint, ModelVersion, Run, SystemPoint
from lepton_desktop.core.errors import InvalidOptionError
from lepton_desktop.core.faults import kill_point
from lepton_desktop.core.store import datasets as dataset_store
from lepton_desktop.core.store import jobs as job_store
from lepton_desktop.core.store import models as model_store
from lepton_desktop.core.store import runs as run_store
from lepton_desktop.core.store.db import transaction
from lepton_desktop.core.training.config import TrainConfig

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What ``project.train`` returns: the run, its test metrics and the model version.

    ``strong_baseline`` is ``{name, metrics, fit_seconds}`` of the classical model fitted
    beside the network (None when the run skipped it).
    """

    run: Run
    metrics: dict[str, float]
    baseline: dict[str, float]
    model: ModelVersion
    strong_baseline: dict[str, Any] | None = None


class RunManager:
    """Training runs of one project (reached as ``project.runs``)."""

    def __init__(self, ctx: ProjectContext) -> None:
        self._conn = ctx.conn

    def list(self, *, include_archived: bool = False) -> builtins.list[Run]:
        """Runs, newest first."""
        return run_store.list_runs(self._conn, include_archived=include_archived)

    def get(self, run_id: int) -> Run:
        """One run. Raises NotFoundError."""
        return run_store.get(self._conn, run_id)

    def queue(
        self, dataset: str, config: TrainConfig, *, lineage: dict[str, Any] | None = None
    ) -> tuple[Run, int]:
        """Validate and queue a run with its worker job; return ``(run, job id)``.

        ``lineage`` goes into the registered model's params (e.g. the study and trial
        of a tuned configuration).

        Raises:
            InvalidOptionError: impossible options or a dataset that does not fit;
                nothing is written.
        """
        from lepton_desktop.core.training.data import (
            check_fits,
            check_planned_memory,
            check_planned_privacy,
        )

        version = dataset_store.resolve(self._conn, dataset)
        config.validate()
        check_fits(version, config)
        check_planned_memory(version, config)
        check_planned_privacy(version, config)
        _check_window(version.n_rows, config)
        with transaction(self._conn):  # a run never exists without its job
            run_id = run_store.create(
                self._conn,
                dataset_version_id=version.id,
                dataset_ref=version.ref,
                arch=config.arch,
                task=config.task or "auto",
                config=config.to_dict(),
            )
            job_args: dict[str, Any] = {"run_id": run_id}
            if lineage:
                job_args["lineage"] = lineage
            job_id = job_store.create(self._conn, "train", job_args)
            run_store.update(self._conn, run_id, job_id=job_id)
        kill_point("after-queue")
        return self.get(run_id), job_id

    def queue_resume(self, run_id: int) -> int:
        """Queue a job that continues a run from its last checkpoint; return the job id."""
        run = self.get(run_id)
        if not run.resumable:
            raise InvalidOptionError(
                f"run {run_id} is {run.status}; only interrupted, stopped, "
                "paused or failed runs can be resumed"
            )
        with transaction(self._conn):
            job_id = job_store.create(self._conn, "train", {"run_id": run_id, "resume": True})
            run_store.update(self._conn, run_id, job_id=job_id, status="queued", control=None)
        kill_point("after-queue")
        return job_id

    def metrics(self, run_id: int, after_id: int = 0) -> builtins.list[MetricPoint]:
        """Metric rows newer than ``after_id`` (incremental polling)."""
        return run_store.metrics_since(self._conn, run_id, after_id)

    def system(self, run_id: int, after_id: int = 0) -> builtins.list[SystemPoint]:
        """System samples newer than ``after_id``."""
        return run_store.system_since(self._conn, run_id, after_id)

    def pause(self, run_id: int) -> None:
        """Ask a running run to pause after its current step."""
        run_store.update(self._conn, run_id, control="pause")

    def resume(self, run_id: int) -> None:
        """Let a paused run continue (in the same worker)."""
        run_store.update(self._conn, run_id, control=None)

    def stop(self, run_id: int) -> None:
        """Ask a run to stop; it is still evaluated and registered from its best epoch."""
        run_store.update(self._conn, run_id, control="stop")

    def set_notes(self, run_id: int, notes: str) -> None:
        """Replace a run's notes."""
        run_store.update(self._conn, run_id, notes=notes)

    def archive(self, run_id: int, archived: bool = True) -> None:
        """Hide (or show again) a finished run, freeing its checkpoints.

        Metrics, evaluation and registered model versions stay; the checkpoint blobs
        go, so an archived run can no longer be resumed.
        """
        run = self.get(run_id)
        if archived and run.status in ("queued", "running", "paused"):
            raise InvalidOptionError(f"run {run_id} is {run.status}; stop it before archiving it")
        run_store.update(self._conn, run_id, archived=int(archived))
        if archived:
            run_store.drop_checkpoints(self._conn, run_id)

    def delete(self, run_id: int) -> None:
        """Delete a run with the blobs it owns: checkpoints, metrics, its model versions."""
        run = self.get(run_id)
        if run.status in ("queued", "running", "paused"):
            raise InvalidOptionError(f"run {run_id} is {run.status}; stop it before deleting it")
        model_store.delete_for_run(self._conn, run_id)
        run_store.delete(self._conn, run_id)


def _check_window(n_rows: int, config: TrainConfig) -> None:
    if config.arch != "rnn" or config.window is None:
        return
    train_rows = int(n_rows * 0.7)
    if config.window + config.horizon >= max(train_rows, 1):
        raise InvalidOptionError(
            f"--window {config.window} with --horizon {config.horizon} is longer than the "
            f"series' training part (about {train_rows} of {n_rows} points)"
        )
