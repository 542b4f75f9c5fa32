"""``project.tuning``: create, run, stop, extend and harvest tuning studies.

Everything a user gives is checked before anything is written: a bad space, sampler,
pruner, metric, trial count or an unreachable storage leaves the project file as it
was (no row of ours, no Optuna study). Running happens in a ``tune`` job
(:mod:`lepton_desktop.core.tuning.runner`), started by the GUI as ``lepton-desktop
worker tune --project P --job N`` and by ``lepton-desktop tune`` in the foreground.
"""

from __future__ import annotations

import builtins
import re
from typing import TYPE_CHECKING, Any

from lepton_desktop.core.entities import ModelVersion, Run, Study
from lepton_desktop.core.errors import InvalidOptionError, NotFoundError
from lepton_desktop.core.faults import kill_point
from lepton_desktop.core.jobs import cancel_job
from lepton_desktop.core.names import check_name
from lepton_desktop.core.registry.registry import ModelRegistry
from lepton_desktop.core.store import datasets as dataset_store
from lepton_desktop.core.store import jobs as job_store
from lepton_desktop.core.store import tuning as tuning_store
from lepton_desktop.core.store.db import transaction
from lepton_desktop.core.training.config import TrainConfig
from lepton_desktop.core.training.manager import RunManager
from lepton_desktop.core.tuning import space as spaces
from lepton_desktop.core.tuning import storage as storages

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
#: More trial processes than this on one machine only fight over its cores.
MAX_JOBS = 64


class TuningManager:
    """Tuning studies of one project (reached as ``project.tuning``)."""

    def __init__(self, ctx: ProjectContext) -> None:
        self._ctx = ctx
        self._conn = ctx.conn

    def default_space(self, arch: str) -> dict[str, dict[str, Any]]:
        """The search space used when none is given (see :mod:`.space`)."""
        return spaces.default_space(arch)

    def create(
        self,
        dataset: str,
        arch: str,
        *,
        space: dict[str, Any] | None = None,
        sampler: str = "tpe",
        pruner: str = "median",
        n_trials: int = 20,
        jobs: int = 1,
        metric: str | None = None,
        objectives: list[str] | None = None,
        storage: str | None = None,
        name: str | None = None,
        epochs: int | None = None,
        seed: int = 0,
        dp_epsilon: float | None = None,
    ) -> Study:
        """Check everything, then create the Optuna study and our record of it.

        Args:
            dataset: ``name`` or ``name:version``.
            arch: mlp, cnn or rnn (it must fit the dataset's kind).
            space: hyperparameter ranges (default: :func:`.space.default_space`).
            sampler: tpe, gp, grid, random or cmaes.
            pruner: median, hyperband or none (always none with several objectives).
            n_trials: trials to finish (completed or pruned); a grid caps it.
            jobs: trials at once on this machine.
            metric: the validation metric optimized (default f1, or mse for numbers).
            objectives: several objectives, e.g. ``["f1", "params"]``.
            storage: an external Optuna storage URL (shared by several machines);
                an existing study there with the same name is joined.
            name: the study's name (default ``DATASET-ARCH``, made unique).
            epochs: epochs per trial (default: as training decides).
            seed: seeds the sampler and every trial's training.
            dp_epsilon: train every trial (and the retrained best) with differential
                privacy at this ε (a fixed option of the study).

        Raises:
            InvalidOptionError: any bad option, naming it; nothing is written.
            NotFoundError: no such dataset.
        """
        # Optuna is imported only here and when running: listing studies stays cheap.
        from lepton_desktop.core.tuning.setup import StudyRequest, create_study

        _check_counts(n_trials, jobs, epochs, seed)
        if sampler not in spaces.SAMPLERS:
            raise InvalidOptionError(
                f"--sampler {sampler!r}: choose one of {', '.join(spaces.SAMPLERS)}"
            )
        if pruner not in spaces.PRUNERS:
            raise InvalidOptionError(
                f"--pruner {pruner!r}: choose one of {', '.join(spaces.PRUNERS)}"
            )
        if name is not None and not _NAME.fullmatch(check_name(name, "--study")):
            raise InvalidOptionError(
                f"--study {name!r}: use letters, digits, '.', '_' and '-' (at most 100)"
            )
        request = StudyRequest(
            dataset=dataset_store.resolve(self._conn, dataset),
            arch=arch,
            space=space,
            sampler=sampler,
            pruner=pruner,
            n_trials=n_trials,
            jobs=jobs,
            metric=metric,
            objectives=objectives,
            storage=storages.normalize(storage, self._ctx.path),
            name=name,
            options={"seed": seed}
            | ({"epochs": epochs} if epochs is not None else {})
            | ({"dp_epsilon": dp_epsilon} if dp_epsilon is not None else {}),
        )
        return create_study(self._ctx, request)

    def list(self) -> builtins.list[Study]:
        """Every study, newest first."""
        return tuning_store.list_studies(self._conn)

    def get(self, name: str) -> Study:
        """One study. Raises NotFoundError."""
        return tuning_store.get(self._conn, name)

    def storage_url(self, name: str) -> str:
        """The Optuna storage URL of a study (``optuna.load_study(storage=...)``)."""
        study = self.get(name)
        return study.storage or storages.project_url(self._ctx.path)

    def trial_counts(self, name: str) -> dict[str, int]:
        """Trials per Optuna state of a study in the project file ({} if none yet)."""
        return tuning_store.trial_counts(self._conn, self.get(name).optuna_study_id)

    def queue(self, name: str, n_trials: int | None = None, *, jobs: int | None = None) -> int:
        """Queue a ``tune`` job for a study; return its job id.

        Args:
            name: the study.
            n_trials: run this many more trials (extending a finished or stopped
                study); None: finish the planned ones.
            jobs: change how many trials run at once.

        Raises:
            InvalidOptionError: the study is running already, or has nothing left to do.
        """
        study = self.get(name)
        self._check_idle(study)
        _check_counts(1 if n_trials is None else n_trials, jobs or study.jobs, None, 0)
        finished = self._finished(study)
        if n_trials is None:
            # All trials done but no model yet (stopped while retraining the best, or a
            # shared study others finished): the job only finalizes.
            if finished >= study.n_trials and study.status == "finished":
                raise InvalidOptionError(
                    f"study {name} has finished its {study.n_trials} trials; "
                    "give a number of trials to run more"
                )
            target = study.n_trials
        else:
            target = finished + n_trials
        if study.sampler == "grid":
            target = min(target, spaces.grid_size(study.space))
            if n_trials is not None and finished >= target:
                raise InvalidOptionError(f"study {name}: every point of its grid has been tried")
        with transaction(self._conn):  # the study runs exactly when its job exists
            job_id = job_store.create(self._conn, "tune", {"study": name, "n_trials": target})
            tuning_store.update(
                self._conn,
                name,
                n_trials=target,
                jobs=jobs or study.jobs,
                job_id=job_id,
                status="running",
                error=None,
            )
        kill_point("after-queue")
        return job_id

    def _check_idle(self, study: Study) -> None:
        # A study in a shared storage takes any number of tune jobs (that is the point).
        if study.job_id is None or study.storage is not None:
            return
        try:
            job = job_store.get(self._conn, study.job_id)
        except NotFoundError:
            return
        if job.active:
            raise InvalidOptionError(
                f"study {study.name} is running (job {job.id}); stop it first or wait"
            )

    def _finished(self, study: Study) -> int:
        if study.storage is None:
            counts = tuning_store.trial_counts(self._conn, study.optuna_study_id)
            return counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)
        from lepton_desktop.core.tuning.runner import count_trials, load_study

        return count_trials(load_study(study, self._ctx)).finished

    def stop(self, name: str) -> None:
        """Stop a study's job and its trial workers; queue it again to resume."""
        study = self.get(name)
        mine = [
            j
            for j in job_store.list_jobs(self._conn, active_only=True)
            if j.kind in ("tune", "trial") and j.args.get("study") == name
        ]
        for job in sorted(mine, key=lambda j: j.kind == "tune"):  # trial workers first
            cancel_job(self._conn, job.id)
        running = any(job_store.get(self._conn, j.id).status == "running" for j in mine)
        if study.status in ("created", "running") and not running:
            tuning_store.update(self._conn, name, status="stopped")

    def promote_best(self, name: str) -> ModelVersion:
        """Point the alias ``champion`` at the study's best model and return it.

        Raises:
            InvalidOptionError: the study has no registered model yet.
        """
        study = self.get(name)
        if study.best_model is None:
            raise InvalidOptionError(
                f"study {name} has no model yet: let it finish (or retrain its best trial)"
            )
        return ModelRegistry(self._ctx).set_alias(study.best_model, "champion")

    def queue_retrain_best(self, name: str) -> tuple[Run, int]:
        """Queue a training run of the best trial's configuration on train+val data.

        It trains for the best trial's best epoch count, without early stopping, and
        keeps the last weights; its model's params carry the study and trial.

        Returns:
            ``(run, job id)``; the job is a ``train`` job.
        """
        from lepton_desktop.core.tuning.runner import load_study

        study = self.get(name)
        if study.best_trial is None or study.best_params is None:
            raise InvalidOptionError(f"study {name} has no completed trial yet")
        trial = load_study(study, self._ctx).trials[study.best_trial]
        options = spaces.apply_params({"arch": study.arch, **study.options}, study.best_params)
        options |= {
            "epochs": max(
                1, int(trial.user_attrs.get("best_epoch") or options.get("epochs") or 1)
            ),
            "patience": 0,
            "train_on": "train+val",
        }
        lineage = {"study": name, "trial": study.best_trial, "train_on": "train+val"}
        return RunManager(self._ctx).queue(
            study.dataset, TrainConfig.from_dict(options), lineage=lineage
        )

    def summary(self) -> builtins.list[dict[str, Any]]:
        """One JSON-ready entry per study (``info --json``'s ``studies``)."""
        return [self._summary(s) for s in self.list()]

    def _summary(self, study: Study) -> dict[str, Any]:
        counts = tuning_store.trial_counts(self._conn, study.optuna_study_id)
        return {
            "name": study.name,
            **study_settings(study),
            "n_trials": study.n_trials,
            "trials": {state.lower(): n for state, n in counts.items()},
            **study_outcome(study),
        }

    def result(self, name: str) -> dict[str, Any]:
        """The study as ``tune --json`` prints it (counts from its storage)."""
        from lepton_desktop.core.tuning.finalize import study_result

        return study_result(self._ctx, self.get(name))


def study_settings(study: Study) -> dict[str, Any]:
    """The study's status and what it was created with, JSON-ready.

    ``info --json`` and ``tune --json`` describe a study with these keys, then its trial
    counts, then :func:`study_outcome`.
    """
    return {
        "status": study.status,
        "dataset": study.dataset,
        "arch": study.arch,
        "sampler": study.sampler,
        "pruner": study.pruner,
        "metric": study.metric,
        "objectives": study.objectives,
        "directions": study.directions,
    }


def study_outcome(study: Study) -> dict[str, Any]:
    """The study's best trial and model, and where its trials are kept, JSON-ready."""
    return {
        "best_trial": study.best_trial,
        "best_value": study.best_value,
        "best_params": study.best_params,
        "model": study.best_model,
        "storage": storages.redact(study.storage),
        "optuna_study_id": study.optuna_study_id,
    }


def _check_counts(n_trials: int, jobs: int, epochs: int | None, seed: int) -> None:
    checks: dict[str, tuple[Any, int]] = {
        "--trials": (n_trials, 1),
        "--jobs": (jobs, 1),
        "--seed": (seed, 0),
    }
    if epochs is not None:
        checks["--epochs"] = (epochs, 1)
    for flag, (value, least) in checks.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise InvalidOptionError(f"{flag} {value}: must be a whole number of at least {least}")
    if jobs > MAX_JOBS:
        raise InvalidOptionError(f"--jobs {jobs}: at most {MAX_JOBS} trials at once")
