"""The Training tab's operations: small functions that call core through the session.

Functions whose name starts with ``read_`` run on the session's DB thread and turn
rows into what the widgets draw (numpy arrays, not thousands of records), so the
GUI thread only appends and redraws. The others are ops (Anki's ``operations``):
they take input gathered by a slot, call one core method on the DB thread, report
what changed, and start worker processes through the session's JobRunner.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from lepton_desktop.core.entities import DatasetVersion, ModelVersion, Run
from lepton_desktop.core.errors import NotFoundError
from lepton_desktop.core.jobs import HEARTBEAT_INTERVAL_S
from lepton_desktop.core.training.config import TrainConfig
from lepton_desktop.gui.session import Changes, ProjectSession
from lepton_desktop.gui.training.run_format import ACTIVE_STATUSES

if TYPE_CHECKING:
    from lepton_desktop.core.project import Project
    from lepton_desktop.gui.tasks import OnError

#: A running worker that has not beaten its heart for this long is shown as stale.
STALE_AFTER_S = 5 * HEARTBEAT_INTERVAL_S
RUNS = Changes(runs=True)
RUNS_AND_MODELS = Changes(runs=True, models=True)
Series = dict[str, tuple[np.ndarray, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class RunsSnapshot:
    """The runs table's content: runs, each run's model version, and stale runs."""

    runs: list[Run]
    models: dict[int, ModelVersion]
    stale: frozenset[int]


@dataclasses.dataclass(frozen=True)
class Cursor:
    """Where incremental reading of a run stopped.

    Attributes:
        metric_after, system_after: ids of the last metric and system rows read.
        t0: time of the run's first system sample (the origin of the time axis).
    """

    metric_after: int = 0
    system_after: int = 0
    t0: float | None = None


@dataclasses.dataclass(frozen=True)
class RunUpdate:
    """A run's row and its metric and system rows newer than the last ones seen.

    Attributes:
        run: the run as it is now (read before its metrics, so a finished run's
            metrics are complete).
        stale: its worker stopped reporting.
        metrics: metric name -> (step or epoch, value); empty for a status-only read.
        system: sample name -> (seconds since the first sample, value).
        cursor: where the next incremental read starts.
        with_points: metric rows were read (False: the run's row only).
    """

    run: Run
    stale: bool
    metrics: Series
    system: Series
    cursor: Cursor
    with_points: bool = True


# -- reads (DB thread) ------------------------------------------------------------------


def read_runs(project: Project, include_archived: bool) -> RunsSnapshot:
    """DB thread: every run, the model version each one registered, and which are stale."""
    runs = project.runs.list(include_archived=include_archived)
    models = {v.run_id: v for v in project.models.list() if v.run_id is not None}
    stale = frozenset(r.id for r in runs if read_stale(project, r))
    return RunsSnapshot(runs, models, stale)


def read_stale(project: Project, run: Run) -> bool:
    """DB thread: an active run whose job ended, vanished or stopped beating its heart."""
    if run.status not in ACTIVE_STATUSES:
        return False
    if run.job_id is None:
        return True
    try:
        job = project.job(run.job_id)
    except NotFoundError:
        return True
    if not job.active:
        return True
    beat = job.heartbeat_at
    return job.status == "running" and beat is not None and beat < time.time() - STALE_AFTER_S


def read_updates(project: Project, cursors: dict[int, Cursor | None]) -> list[RunUpdate]:
    """DB thread: each run's row, and (where a cursor is given) its newer metric rows.

    Args:
        project: the open project.
        cursors: run id -> where its last read stopped, or None for its row only.
    """
    updates = []
    for run_id, cursor in cursors.items():
        try:
            run = project.runs.get(run_id)
        except NotFoundError:
            continue  # deleted meanwhile (by another window or the CLI)
        updates.append(_read_update(project, run, cursor))
    return updates


def _read_update(project: Project, run: Run, cursor: Cursor | None) -> RunUpdate:
    stale = read_stale(project, run)
    if cursor is None:
        return RunUpdate(run, stale, {}, {}, Cursor(), with_points=False)
    points = project.runs.metrics(run.id, cursor.metric_after)
    samples = project.runs.system(run.id, cursor.system_after)
    metrics: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for p in points:
        x = p.step if p.name == "loss" else p.epoch
        metrics[p.name].append((x, np.nan if p.value is None else p.value))
    origin = cursor.t0 if cursor.t0 is not None else (samples[0].t if samples else None)
    system: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for s in samples:
        for name in ("cpu_percent", "rss_mb", "gpu_percent", "gpu_mem_mb"):
            value = getattr(s, name)
            if value is not None:
                system[name].append((s.t - (origin or s.t), value))
    after = Cursor(
        points[-1].id if points else cursor.metric_after,
        samples[-1].id if samples else cursor.system_after,
        origin,
    )
    return RunUpdate(run, stale, _arrays(metrics), _arrays(system), after)


def _arrays(rows: dict[str, list[tuple[float, float]]]) -> Series:
    out = {}
    for name, pairs in rows.items():
        data = np.asarray(pairs, dtype=float).reshape(-1, 2)
        out[name] = (data[:, 0].copy(), data[:, 1].copy())
    return out


# -- ops (GUI thread) --------------------------------------------------------------------


def load_datasets(
    session: ProjectSession, on_done: Callable[[list[DatasetVersion]], None], owner: Any
) -> None:
    """Read the dataset versions a run can train on."""
    session.query(lambda p: p.datasets(), on_done, owner=owner)


def load_runs(
    session: ProjectSession, include_archived: bool,
    on_done: Callable[[RunsSnapshot], None], owner: Any,
) -> None:
    """Read the runs table's content."""
    session.query(lambda p: read_runs(p, include_archived), on_done, owner=owner)


def poll_runs(
    session: ProjectSession, cursors: dict[int, Cursor | None],
    on_done: Callable[[list[RunUpdate]], None], on_error: OnError, owner: Any,
) -> None:
    """Read what changed in these runs since their cursors (see :func:`read_updates`)."""
    session.query(lambda p: read_updates(p, cursors), on_done, on_error, owner)


def load_run(
    session: ProjectSession, run_id: int, on_done: Callable[[Run], None], owner: Any
) -> None:
    """Read one run (a notification's content)."""
    session.query(lambda p: p.runs.get(run_id), on_done, lambda exc: None, owner)


def start_training(
    session: ProjectSession, dataset: str, config: TrainConfig,
    on_done: Callable[[Run], None], on_error: OnError,
) -> None:
    """Validate and queue a run (core refuses bad options), then start its worker."""

    def queued(result: tuple[Run, int]) -> None:
        run, job_id = result
        session.jobs.start("train", job_id)
        on_done(run)

    session.command(lambda p: p.runs.queue(dataset, config), RUNS, queued, on_error)


def resume_run(session: ProjectSession, run: Run, stale: bool, on_error: OnError) -> None:
    """Continue a run: a paused one in its own worker, any other from its checkpoint."""
    if run.status == "paused" and not stale:
        session.command(lambda p: p.runs.resume(run.id), RUNS, on_error=on_error)
        return

    def queue(project: Project) -> int:
        if stale:
            project.recover_stale_jobs()  # marks a dead worker's run interrupted
        return project.runs.queue_resume(run.id)

    session.command(queue, RUNS, lambda job_id: session.jobs.start("train", job_id), on_error)


def control_run(session: ProjectSession, run_id: int, request: str, on_error: OnError) -> None:
    """Ask a run's worker to ``pause`` or ``stop`` (it answers within a step)."""
    session.command(
        lambda p: getattr(p.runs, request)(run_id), RUNS, on_error=on_error
    )


def archive_run(
    session: ProjectSession, run_id: int, archived: bool, stale: bool, on_error: OnError
) -> None:
    """Hide a run from the table (or show it again); its metrics and model are kept."""

    def archive(project: Project) -> None:
        if stale:
            project.recover_stale_jobs()  # a dead worker's run is interrupted, not running
        project.runs.archive(run_id, archived)

    session.command(archive, RUNS, on_error=on_error)


def delete_run(session: ProjectSession, run_id: int, stale: bool, on_error: OnError) -> None:
    """Delete a run with its metrics, checkpoints and model versions."""

    def delete(project: Project) -> None:
        if stale:
            project.recover_stale_jobs()
        project.runs.delete(run_id)

    session.command(delete, RUNS_AND_MODELS, on_error=on_error)


def set_champion(session: ProjectSession, model_ref: str, on_error: OnError) -> None:
    """Point the ``champion`` alias of the model at this version."""
    session.command(
        lambda p: p.models.set_alias(model_ref, "champion"), RUNS_AND_MODELS, on_error=on_error
    )
