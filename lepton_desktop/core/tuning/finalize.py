"""The end of a study: copy it home, retrain its best trial, register the model.

Only one process finalizes a study at a time (a lease in ``tuning_studies``): with
``tune`` running on several machines or twice on one project, each ends by
finalizing, one after the other, and a best trial that already has its model is not
retrained again.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import optuna
import psutil

from lepton_desktop.core.entities import Job, ModelVersion, Study
from lepton_desktop.core.errors import LeptonError
from lepton_desktop.core.store import datasets as dataset_store
from lepton_desktop.core.store import models as model_store
from lepton_desktop.core.store import optuna_trials
from lepton_desktop.core.store import runs as run_store
from lepton_desktop.core.store import tuning as tuning_store
from lepton_desktop.core.tuning import storage as storages
from lepton_desktop.core.tuning.manager import study_outcome, study_settings
from lepton_desktop.core.tuning.runner import POLL_S, best_trial, count_trials, load_study
from lepton_desktop.core.tuning.trial import trial_config

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext
    from lepton_desktop.core.progress import Reporter


def finalize(ctx: ProjectContext, study: Study, job: Job, reporter: Reporter) -> dict[str, Any]:
    """Copy (external storage), retrain and register the best; return the job's result.

    Raises:
        LeptonError: no trial completed.
    """
    _take_lease(ctx, study.name, reporter)
    try:
        if study.storage is not None:
            copy_into_project(ctx, study)
        study = tuning_store.get(ctx.conn, study.name)
        optuna_study = load_study(study, ctx)
        best = best_trial(optuna_study, study)
        if best is None:
            counts = count_trials(optuna_study)
            raise LeptonError(
                f"study {study.name}: no trial completed ({counts.pruned} pruned, "
                f"{counts.failed} failed); widen the search space or add epochs"
            )
        model_id = _model_for(ctx, study, best, job, reporter)
        tuning_store.update(
            ctx.conn,
            study.name,
            status="finished",
            best_value=best.values[0],
            best_params=best.params,
            best_trial=best.number,
            best_model_id=model_id,
            finished_at=time.time(),
        )
    finally:
        tuning_store.release_finalize(ctx.conn, study.name)
    return study_result(ctx, tuning_store.get(ctx.conn, study.name), optuna_study)


def record_best(ctx: ProjectContext, study: Study) -> None:
    """Write the best trial so far into our table (a study stopped before its end)."""
    best = best_trial(load_study(study, ctx), study)
    if best is not None:
        tuning_store.update(
            ctx.conn,
            study.name,
            best_value=best.values[0],
            best_params=best.params,
            best_trial=best.number,
        )


def _take_lease(ctx: ProjectContext, name: str, reporter: Reporter) -> None:
    # A project file lives on one machine, so the holder is a process of this one.
    while not tuning_store.claim_finalize(ctx.conn, name):
        holder = tuning_store.finalizer(ctx.conn, name)
        if holder is not None and not psutil.pid_exists(holder):
            tuning_store.release_finalize(ctx.conn, name, holder)  # it died holding it
            continue
        reporter.update(0, None, "another process is registering the study's model")
        time.sleep(POLL_S)


def copy_into_project(ctx: ProjectContext, study: Study) -> None:
    """Copy an external study into the project file, replacing an older copy."""
    source = storages.open_storage(study.storage, ctx.path)
    home = storages.open_storage(None, ctx.path)
    with storages.quiet():
        if study.name in optuna_trials.study_names(ctx.conn):
            optuna.delete_study(study_name=study.name, storage=home)
        optuna.copy_study(from_study_name=study.name, from_storage=source, to_storage=home)
    study_id = home.get_study_id_from_name(study.name)
    tuning_store.update(ctx.conn, study.name, optuna_study_id=study_id)


def _model_for(
    ctx: ProjectContext, study: Study, best: optuna.trial.FrozenTrial, job: Job, reporter: Reporter
) -> int:
    if study.best_trial == best.number and study.best_model is not None:
        # Registered by an earlier finalize.
        return model_store.resolve(ctx.conn, study.best_model).id
    # Registered by a finalize killed before it could record it in the study.
    registered = model_store.tuned_version(ctx.conn, study.name, best.number)
    if registered is not None:
        return registered.id
    return retrain(ctx, study, best, job.id, reporter).id


class _RetrainProgress:
    """Shows the retraining of the best trial on the tune job's progress."""

    def __init__(self, reporter: Reporter, trial: int) -> None:
        self.reporter, self.trial = reporter, trial

    def update(self, done: int, total: int | None, message: str = "") -> None:
        """Forward with a prefix (the bar stays full: the trials are done)."""
        self.reporter.update(1, 1, f"retraining the best trial {self.trial}: {message}")


def retrain(
    ctx: ProjectContext,
    study: Study,
    best: optuna.trial.FrozenTrial,
    job_id: int | None,
    reporter: Reporter,
) -> ModelVersion:
    """Train the best trial's configuration as a run and register its model.

    The model's params carry ``study`` and ``trial`` (its lineage).
    """
    from lepton_desktop.core.training.service import run_training

    config = trial_config(study, best.params)
    version = dataset_store.get_version(ctx.conn, study.dataset_version_id or 0)
    run_id = run_store.create(
        ctx.conn,
        dataset_version_id=version.id,
        dataset_ref=version.ref,
        arch=config.arch,
        task=config.task or "auto",
        config=config.to_dict(),
        job_id=job_id,
    )
    result = run_training(
        ctx,
        run_id,
        _RetrainProgress(reporter, best.number),
        lineage={"study": study.name, "trial": best.number},
    )
    return model_store.resolve(ctx.conn, result["model"])


def study_result(
    ctx: ProjectContext, study: Study, optuna_study: optuna.Study | None = None
) -> dict[str, Any]:
    """What ``tune --json`` prints and the tune job returns."""
    optuna_study = optuna_study or load_study(study, ctx)
    counts = count_trials(optuna_study)
    result: dict[str, Any] = {
        "study": study.name,
        **study_settings(study),
        "n_trials": counts.finished,
        "target_trials": study.n_trials,
        "trials": {
            "complete": counts.complete,
            "pruned": counts.pruned,
            "failed": counts.failed,
            "running": counts.running,
        },
        **study_outcome(study),
    }
    if study.multi_objective:
        result["pareto"] = [
            {"trial": t.number, "values": t.values, "params": t.params}
            for t in sorted(optuna_study.best_trials, key=lambda t: t.number)
        ]
    return result
