"""Creating a study: every check first, then the Optuna study, then our record.

A study in an external storage (``--storage URL``) may already exist there, made by
``tune`` on another machine: it is joined when its definition (kept in the Optuna
study's user attribute ``lepton``: architecture, objectives, space, fixed options)
matches the request, and refused with the difference otherwise.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import TYPE_CHECKING, Any

import optuna

from lepton_desktop.core.entities import DatasetVersion, Study
from lepton_desktop.core.errors import InvalidOptionError, LeptonError
from lepton_desktop.core.store import optuna_trials
from lepton_desktop.core.store import tuning as tuning_store
from lepton_desktop.core.training.config import TrainConfig
from lepton_desktop.core.training.data import (
    check_fits,
    check_planned_memory,
    check_planned_privacy,
)
from lepton_desktop.core.tuning import objectives as objs
from lepton_desktop.core.tuning import space as spaces
from lepton_desktop.core.tuning import storage as storages

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext

#: The Optuna study user attribute that holds a study's definition.
DEFINITION_ATTR = "lepton"
#: Seconds a joining process waits for the creator to write the definition.
DEFINITION_WAIT_S = 10.0
#: Default rnn windows stay below this share of the training points.
_WINDOW_SHARE = 2


@dataclasses.dataclass
class StudyRequest:
    """What ``TuningManager.create`` was asked (the options still unchecked)."""

    dataset: DatasetVersion
    arch: str
    space: dict[str, Any] | None
    sampler: str
    pruner: str
    n_trials: int
    jobs: int
    metric: str | None
    objectives: list[str] | None
    storage: str | None
    name: str | None
    options: dict[str, Any]


@dataclasses.dataclass
class StudyPlan:
    """A checked request: everything needed to create the study."""

    name: str
    version: DatasetVersion
    arch: str
    space: dict[str, dict[str, Any]]
    sampler: str
    pruner: str
    n_trials: int
    jobs: int
    objectives: list[str]
    directions: list[str]
    storage: str | None
    options: dict[str, Any]
    space_given: bool

    def definition(self) -> dict[str, Any]:
        """What another machine's ``tune`` must agree on to join the study."""
        return {
            "arch": self.arch,
            "dataset": self.version.name,
            "objectives": self.objectives,
            "space": self.space,
            "options": self.options,
            "sampler": self.sampler,
            "pruner": self.pruner,
            "n_trials": self.n_trials,
        }


def create_study(ctx: ProjectContext, request: StudyRequest) -> Study:
    """Check ``request``, then create (or join) the study; see the module docstring."""
    plan = plan_study(ctx, request)
    if tuning_store.exists(ctx.conn, plan.name):
        return _existing(ctx, plan)
    storage = storages.open_storage(plan.storage, ctx.path)
    optuna_study = _create_or_join(storage, plan)
    study_id = storage.get_study_id_from_name(plan.name) if plan.storage is None else None
    try:
        tuning_store.create(
            ctx.conn,
            name=plan.name,
            optuna_study_id=study_id,
            storage=plan.storage,
            dataset_version_id=plan.version.id,
            dataset_ref=plan.version.ref,
            arch=plan.arch,
            sampler=plan.sampler,
            pruner=plan.pruner,
            objectives=plan.objectives,
            directions=plan.directions,
            space=plan.space,
            options=plan.options,
            n_trials=plan.n_trials,
            jobs=plan.jobs,
        )
    except LeptonError:
        if plan.storage is not None and tuning_store.exists(ctx.conn, plan.name):
            return _existing(ctx, plan)  # another process of this ctx joined first
        if plan.storage is None:
            with storages.quiet():
                optuna.delete_study(study_name=optuna_study.study_name, storage=storage)
        raise
    return tuning_store.get(ctx.conn, plan.name)


def plan_study(ctx: ProjectContext, request: StudyRequest) -> StudyPlan:
    """Every check of a request, writing nothing. Raises InvalidOptionError."""
    version, arch = request.dataset, request.arch
    base = TrainConfig.from_dict({"arch": arch, **request.options})
    default = spaces.default_space(arch)  # also refuses an unknown architecture by name
    base.validate()
    check_fits(version, base)
    task = objs.detect_task(ctx.conn, version)
    objectives, directions = objs.resolve(task, request.metric, request.objectives)
    pruner = request.pruner
    if len(objectives) > 1:
        if request.sampler == "cmaes":
            raise InvalidOptionError(
                "--sampler cmaes optimizes one objective; use tpe, gp, random or grid "
                "with --objectives"
            )
        pruner = "none"  # Optuna cannot prune multi-objective trials
    if request.space is None:
        space = _fit_default_window(default, version, base)
    else:
        space = spaces.validate_space(request.space, arch, request.options)
        _check_window(space, version, base)
    _check_largest_fits(space, version, base)
    n_trials = request.n_trials
    if request.sampler == "grid":
        n_trials = min(n_trials, spaces.grid_size(space))
    return StudyPlan(
        name=request.name or _free_name(ctx, f"{version.name}-{arch}"),
        version=version,
        arch=arch,
        space=space,
        sampler=request.sampler,
        pruner=pruner,
        n_trials=n_trials,
        jobs=request.jobs,
        objectives=objectives,
        directions=directions,
        storage=request.storage,
        options=request.options,
        space_given=request.space is not None,
    )


def _check_largest_fits(
    space: dict[str, dict[str, Any]], version: DatasetVersion, base: TrainConfig
) -> None:
    # Every upper bound of the space at once, before a trial starts: a space whose
    # largest model cannot be trained here is refused now, not trial by trial.
    options = spaces.apply_params(base.to_dict(), spaces.largest_params(space))
    try:
        check_planned_memory(version, TrainConfig.from_dict(options))
    except InvalidOptionError as exc:
        raise InvalidOptionError(f"search space: at its upper bounds, {exc}") from None
    # A fixed ε must be reachable: checked on the fixed options (the space's batch
    # sizes change it a little; a trial that cannot meet it is pruned, saying why).
    check_planned_privacy(version, base)


def _train_points(version: DatasetVersion) -> int:
    splits = version.splits or {}
    return int(splits.get("train") or version.n_rows * 0.7)


def _fit_default_window(
    space: dict[str, dict[str, Any]], version: DatasetVersion, base: TrainConfig
) -> dict[str, dict[str, Any]]:
    if "window" in space:
        high = min(int(space["window"]["high"]), _train_points(version) // _WINDOW_SHARE)
        if high - base.horizon <= space["window"]["low"]:
            del space["window"]  # a short series: training's own default window
        else:
            space["window"]["high"] = high - base.horizon
    return space


def _check_window(space: dict[str, Any], version: DatasetVersion, base: TrainConfig) -> None:
    spec = space.get("window")
    if spec is None:
        return
    longest = max(spec["choices"]) if spec["type"] == "categorical" else spec["high"]
    points = _train_points(version)
    if longest + base.horizon >= points:
        raise InvalidOptionError(
            f"search space: 'window' up to {longest} (+ horizon {base.horizon}) does not fit "
            f"the {points} training points of {version.ref}; lower its high"
        )


def _free_name(ctx: ProjectContext, stem: str) -> str:
    taken = {s.name for s in tuning_store.list_studies(ctx.conn)}
    taken |= set(optuna_trials.study_names(ctx.conn))
    name, number = stem, 1
    while name in taken:
        number += 1
        name = f"{stem}-{number}"
    return name


def _existing(ctx: ProjectContext, plan: StudyPlan) -> Study:
    study = tuning_store.get(ctx.conn, plan.name)
    if plan.storage is None or study.storage != plan.storage:
        raise InvalidOptionError(
            f"--study {plan.name}: a study of that name exists in this project; extend it "
            f"with `tune PROJECT --resume {plan.name} --trials N` or choose another name"
        )
    stored = {
        "arch": study.arch,
        "objectives": study.objectives,
        "space": study.space,
        "options": study.options,
    }
    _check_same(plan, stored)
    return study


def _create_or_join(storage: Any, plan: StudyPlan) -> optuna.Study:
    with storages.quiet():
        try:
            created = optuna.create_study(
                storage=storage,
                study_name=plan.name,
                directions=[optuna.study.StudyDirection[d.upper()] for d in plan.directions],
            )
        except optuna.exceptions.DuplicatedStudyError:
            if plan.storage is None:
                raise InvalidOptionError(
                    f"--study {plan.name}: the project file holds an Optuna study of that name "
                    "that Lepton did not make; choose another name"
                ) from None
            return _join(storage, plan)
        created.set_user_attr(DEFINITION_ATTR, plan.definition())
        created.set_metric_names(plan.objectives)
    return created


def _join(storage: Any, plan: StudyPlan) -> optuna.Study:
    study = optuna.load_study(study_name=plan.name, storage=storage)
    deadline = time.monotonic() + DEFINITION_WAIT_S
    while DEFINITION_ATTR not in study.user_attrs:  # its creator writes it just after
        if time.monotonic() > deadline:
            raise InvalidOptionError(
                f"--study {plan.name}: a study of that name in {storages.redact(plan.storage)} "
                "was not made by Lepton Desktop; choose another name"
            )
        time.sleep(0.2)
    definition = study.user_attrs[DEFINITION_ATTR]
    if [d.name.lower() for d in study.directions] != plan.directions:
        raise InvalidOptionError(f"--study {plan.name}: its directions differ from this request")
    _check_same(plan, definition)
    return study


def _check_same(plan: StudyPlan, stored: dict[str, Any]) -> None:
    asked: dict[str, Any] = {
        "arch": plan.arch,
        "objectives": plan.objectives,
        "options": plan.options,
        "space": plan.space,
    }
    if not plan.space_given:
        asked["space"] = stored.get("space")  # no --space: the study's own
        plan.space = stored.get("space") or plan.space
    for key, value in asked.items():
        if json.dumps(stored.get(key), sort_keys=True) != json.dumps(value, sort_keys=True):
            raise InvalidOptionError(
                f"--study {plan.name}: the existing study has {key} {stored.get(key)!r}, "
                f"this command asks for {value!r}"
            )
