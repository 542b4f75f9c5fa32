"""The Tuning tab's operations.

Functions named ``read_*`` run on the session's DB thread. The others are ops: they
call ``project.tuning`` (core checks everything first; a refusal changes nothing) on
the DB thread, report what changed, and start ``tune`` and ``train`` workers through
the session's JobRunner.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from lepton_desktop.core.entities import ModelVersion, Run, Study
from lepton_desktop.core.errors import NotFoundError
from lepton_desktop.core.store.optuna_trials import OptunaStudy
from lepton_desktop.core.tuning import reading
from lepton_desktop.gui.session import Changes, ProjectSession

if TYPE_CHECKING:
    from lepton_desktop.core.project import Project
    from lepton_desktop.gui.tasks import OnError

STUDIES = Changes(studies=True)
STUDIES_AND_RUNS = Changes(studies=True, runs=True)
Curves = dict[str, tuple[np.ndarray, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class StudyEntry:
    """One row of the study list: our record (if any) and Optuna's study (if in the file).

    Attributes:
        name: the study's name.
        record: the tuning study as the project knows it; None for a study some script
            made with Optuna directly in the project file.
        optuna: Optuna's study in the project file; None while it lives only in an
            external storage.
        counts: trials per Optuna state.
        best_run_id: the run that retrained the best trial for the registered model.
    """

    name: str
    record: Study | None
    optuna: OptunaStudy | None
    counts: dict[str, int]
    best_run_id: int | None = None

    @property
    def finished(self) -> int:
        """Completed and pruned trials (what a study's trial count counts)."""
        return self.counts.get("COMPLETE", 0) + self.counts.get("PRUNED", 0)

    @property
    def planned(self) -> int | None:
        """Trials the study is to finish (None: not one of ours)."""
        return self.record.n_trials if self.record else None

    @property
    def status(self) -> str:
        """The study's status (``external`` for a study made outside the app)."""
        return self.record.status if self.record else "external"

    @property
    def active(self) -> bool:
        """True while its tune job may still run trials."""
        return bool(self.record and self.record.active) or self.counts.get("RUNNING", 0) > 0


# -- reads (DB thread) --------------------------------------------------------------------


def read_studies(project: Project) -> list[StudyEntry]:
    """DB thread: our studies (newest first), then Optuna studies made outside the app."""
    optuna_studies = {s.study_id: s for s in reading.list_studies(project.ctx)}
    entries = []
    for study in project.tuning.list():
        found = optuna_studies.pop(study.optuna_study_id, None) if study.optuna_study_id else None
        counts = reading.state_counts(project.ctx, found.study_id) if found else {}
        entries.append(StudyEntry(study.name, study, found, counts, _best_run(project, study)))
    for found in optuna_studies.values():
        entries.append(
            StudyEntry(found.name, None, found, reading.state_counts(project.ctx, found.study_id))
        )
    return entries


def _best_run(project: Project, study: Study) -> int | None:
    if study.best_model is None:
        return None
    try:
        return project.models.get(study.best_model).run_id
    except NotFoundError:
        return None  # deleted meanwhile


#: The run metrics a trial's curves show: its losses (the reported values show the metric).
RUN_CURVES = ("train_loss", "val_loss")


def read_run_curves(project: Project, run_id: int) -> Curves:
    """DB thread: a run's per-epoch training and validation loss as arrays."""
    points: dict[str, list[tuple[float, float]]] = {}
    for p in project.runs.metrics(run_id):
        if p.name in RUN_CURVES:
            points.setdefault(p.name, []).append((p.epoch, np.nan if p.value is None else p.value))
    return {
        name: (
            np.array([e for e, _ in pairs], dtype=float),
            np.array([v for _, v in pairs], dtype=float),
        )
        for name, pairs in points.items()
    }


# -- ops (GUI thread) -----------------------------------------------------------------------


def load_studies(
    session: ProjectSession, on_done: Callable[[list[StudyEntry]], None], owner: Any
) -> None:
    """Read the study list."""
    session.query(read_studies, on_done, owner=owner)


def load_run_curves(
    session: ProjectSession, run_id: int, on_done: Callable[[Curves], None], owner: Any
) -> None:
    """Read a trial's training run's per-epoch metrics (a deleted run shows nothing)."""
    session.query(lambda p: read_run_curves(p, run_id), on_done, lambda exc: on_done({}), owner)


def create_study(
    session: ProjectSession,
    options: dict[str, Any],
    start: bool,
    on_done: Callable[[Study], None],
    on_error: OnError,
) -> None:
    """Create a study (``project.tuning.create(**options)``); with ``start``, run it too."""

    def create(project: Project) -> tuple[Study, int | None]:
        study = project.tuning.create(**options)
        return study, project.tuning.queue(study.name) if start else None

    def created(result: tuple[Study, int | None]) -> None:
        study, job_id = result
        if job_id is not None:
            session.jobs.start("tune", job_id)
        on_done(study)

    session.command(create, STUDIES, created, on_error)


def start_study(
    session: ProjectSession, name: str, n_trials: int | None, on_error: OnError
) -> None:
    """Queue a tune job (None: finish the planned trials; N: run N more) and start it."""
    session.command(
        lambda p: p.tuning.queue(name, n_trials),
        STUDIES,
        lambda job_id: session.jobs.start("tune", job_id),
        on_error,
    )


def stop_study(session: ProjectSession, entry: StudyEntry, on_error: OnError) -> None:
    """Ask the study's job and trial workers to stop (then terminate what this app runs)."""
    job_id = entry.record.job_id if entry.record else None

    def stopped(_result: None) -> None:
        if job_id is not None and session.jobs.owns(job_id):
            session.jobs.cancel(job_id)  # terminate, then kill, if it does not stop

    session.command(lambda p: p.tuning.stop(entry.name), STUDIES, stopped, on_error)


def promote_best(
    session: ProjectSession,
    name: str,
    on_done: Callable[[ModelVersion], None],
    on_error: OnError,
) -> None:
    """Point the ``champion`` alias at the study's best model."""
    session.command(
        lambda p: p.tuning.promote_best(name),
        Changes(models=True, studies=True),
        on_done,
        on_error,
    )


def retrain_best(
    session: ProjectSession, name: str, on_done: Callable[[Run], None], on_error: OnError
) -> None:
    """Queue a run of the best trial's settings on train+val, and start its worker."""

    def queued(result: tuple[Run, int]) -> None:
        run, job_id = result
        session.jobs.start("train", job_id)
        on_done(run)

    session.command(
        lambda p: p.tuning.queue_retrain_best(name), STUDIES_AND_RUNS, queued, on_error
    )
