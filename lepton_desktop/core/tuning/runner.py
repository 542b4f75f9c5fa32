"""Running a study: trial loops sharing a budget, then the best model.

A ``tune`` job (:mod:`lepton_desktop.workers.tuning`) runs trials itself and, for
``--jobs K``, starts K-1 ``trial`` worker processes (``lepton-desktop worker trial``),
each a job of its own with heartbeats and a cancel flag. Every process runs a
:class:`TrialLoop`: count the study's trials in the storage, stop when enough are
finished (completed or pruned), else run one more. Several ``tune``
processes on several machines share a study the same way through an external storage.

A trial killed with its process stays RUNNING until the storage's heartbeat fails
it (and retries it once); the loop waits for running trials, so a study whose last
trial died still ends with its budget met.

When the budget is met, one process finalizes (our table's lease): it copies an
external study into the project file and retrains the best trial's configuration
into a registered model (same seed, same data: on a CPU the same weights), whose
params carry ``study`` and ``trial``. Retraining once beats keeping every trial's
weights: the best trial may have run on another machine, and a hundred trials do
not leave a hundred model versions.
"""

from __future__ import annotations

import datetime
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from lepton_desktop.core.entities import Study
from lepton_desktop.core.errors import CancelledError, LeptonError
from lepton_desktop.core.faults import kill_point
from lepton_desktop.core.jobs import job_alive
from lepton_desktop.core.store import tuning as tuning_store
from lepton_desktop.core.tuning import storage as storages
from lepton_desktop.core.tuning.trial import TrialObjective

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext
    from lepton_desktop.core.progress import Reporter

#: Seconds between looks at the study while other processes finish their trials.
POLL_S = 0.5
#: This many failed trials in a row (errors, not pruning) end the study as failed.
MAX_FAILURES_IN_A_ROW = 5


@dataclass
class TrialCounts:
    """A study's trials by state."""

    complete: int = 0
    pruned: int = 0
    failed: int = 0
    running: int = 0
    waiting: int = 0

    @property
    def finished(self) -> int:
        """Trials that count toward the budget."""
        return self.complete + self.pruned


def load_study(study: Study, ctx: ProjectContext, *, seed: int | None = None) -> optuna.Study:
    """The Optuna study behind ``study``, with its sampler and pruner."""
    storage = storages.open_storage(study.storage, ctx.path)
    parallel = study.jobs > 1 or study.storage is not None
    sampler = storages.make_sampler(
        study.sampler,
        study.space,
        study.options.get("seed", 0) if seed is None else seed,
        parallel=parallel,
    )
    pruner = storages.make_pruner(study.pruner, study.options.get("epochs"))
    with storages.quiet():
        return optuna.load_study(
            study_name=study.name, storage=storage, sampler=sampler, pruner=pruner
        )


def count_trials(optuna_study: optuna.Study, *, fail_stale: bool = True) -> TrialCounts:
    """Trials per state, after failing those whose process died (heartbeat)."""
    if fail_stale and storages.has_heartbeat(optuna_study._storage):
        with storages.quiet():
            optuna.storages.fail_stale_trials(optuna_study)
    states = Counter(t.state for t in optuna_study.get_trials(deepcopy=False))
    return TrialCounts(
        complete=states[TrialState.COMPLETE],
        pruned=states[TrialState.PRUNED],
        failed=states[TrialState.FAIL],
        running=states[TrialState.RUNNING],
        waiting=states[TrialState.WAITING],
    )


def best_summary(optuna_study: optuna.Study, study: Study) -> tuple[Any, str]:
    """The best trial (or for several objectives, the Pareto trial best on the first
    objective) and a short text for a progress bar."""
    best = best_trial(optuna_study, study)
    if best is None:
        return None, "no trial completed yet"
    value = best.values[0]
    return best, f"best {study.metric} {value:.4g} (trial {best.number})"


def best_trial(optuna_study: optuna.Study, study: Study) -> optuna.trial.FrozenTrial | None:
    """See :func:`best_summary`."""
    if not study.multi_objective:
        # Not best_trials: for one objective too it builds a Pareto front from deep
        # copies of every trial, ~10 ms a call at 200 trials (bench/tune_overhead).
        try:
            return optuna_study.best_trial
        except ValueError:  # no completed trial yet
            return None
    front = optuna_study.best_trials
    if not front:
        return None
    sign = -1 if study.directions[0] == "maximize" else 1
    return min(front, key=lambda t: (sign * t.values[0], t.number))


class TrialLoop:
    """One process's share of a study: run trials until the budget is met.

    Args:
        ctx: the open project.
        study: the study record.
        target: finished trials (completed or pruned) the study must reach.
        reporter: progress (trials done of target, best so far); raises to cancel.
        index: 0 for the tune job's own process, 1.. for its trial workers.
        parent_job: a trial worker's tune job: the worker stops when it is gone.
    """

    def __init__(
        self,
        ctx: ProjectContext,
        study: Study,
        target: int,
        reporter: Reporter,
        *,
        index: int = 0,
        parent_job: int | None = None,
    ) -> None:
        self.ctx, self.study, self.target = ctx, study, target
        self.reporter, self.parent_job = reporter, parent_job
        seed = storages.process_seed(
            int(study.options.get("seed", 0)), index, study.storage is not None
        )
        self.optuna_study = load_study(study, ctx, seed=seed)
        self.heartbeat = storages.has_heartbeat(self.optuna_study._storage)
        self.objective = TrialObjective(ctx, study, study.jobs, self._on_epoch)
        self.counts = TrialCounts()
        self.note = ""
        self.ran = 0
        self._seeded: set[int] = set()

    def run(self) -> int:
        """Run trials until the study has ``target`` finished; return how many ran here."""
        failures: list[str] = []
        while not self._done():
            if self._budget_taken():
                if not self.heartbeat:
                    break  # no heartbeat: a dead process's trial would never end
                self._give_orphans_a_heartbeat()
                time.sleep(POLL_S)
                with storages.quiet():
                    optuna.storages.fail_stale_trials(self.optuna_study)
                continue
            try:
                with storages.quiet():
                    self.optuna_study.optimize(self.objective, n_trials=1)
                failures.clear()
            except (CancelledError, KeyboardInterrupt):
                raise
            except Exception as exc:  # the trial is FAIL in the study; the next one may work
                failures.append(str(exc) or type(exc).__name__)
                if len(failures) >= MAX_FAILURES_IN_A_ROW:
                    raise LeptonError(
                        f"{len(failures)} trials in a row failed; the last: {failures[-1]}"
                    ) from None
            self.ran += 1
        return self.ran

    def _count(self) -> TrialCounts:
        # Before each trial. In the project file a GROUP BY on Optuna's table is far
        # cheaper than loading every trial (bench/tune_overhead); elsewhere, Optuna's API.
        # (Optuna fails stale trials itself before each trial; the wait below does too.)
        if self.study.storage is None and self.study.optuna_study_id is not None:
            counts = tuning_store.trial_counts(self.ctx.conn, self.study.optuna_study_id)
            return TrialCounts(
                complete=counts.get("COMPLETE", 0),
                pruned=counts.get("PRUNED", 0),
                failed=counts.get("FAIL", 0),
                running=counts.get("RUNNING", 0),
                waiting=counts.get("WAITING", 0),
            )
        return count_trials(self.optuna_study, fail_stale=False)

    def _done(self) -> bool:
        self.counts = self._count()
        _, self.note = best_summary(self.optuna_study, self.study)
        self._report()
        if self.parent_job is not None and not self._parent_running():
            return True
        if self.counts.finished >= self.target:
            return True
        sampler = self.optuna_study.sampler
        return isinstance(sampler, optuna.samplers.GridSampler) and sampler.is_exhausted(
            self.optuna_study
        )

    def _budget_taken(self) -> bool:
        # Trials other processes are running fill the budget, unless they fail: wait
        # for them. A WAITING trial (a retried one) is ours to run.
        busy = self.counts.finished + self.counts.running
        return self.counts.waiting == 0 and busy >= self.target

    def _give_orphans_a_heartbeat(self) -> None:
        # Optuna only fails RUNNING trials whose heartbeat went stale; a process killed
        # between creating its trial and its first heartbeat leaves a trial that
        # never would be. One heartbeat from here, once, for each trial running longer
        # than a heartbeat takes, makes such an orphan go stale like any dead trial (a
        # live trial just beats on; a dead one with heartbeats fails a little later).
        storage = self.optuna_study._storage
        old = datetime.datetime.now() - datetime.timedelta(
            seconds=2 * storages.HEARTBEAT_INTERVAL_S
        )
        for trial in self.optuna_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            started = trial.datetime_start
            if trial._trial_id in self._seeded or started is None or started > old:
                continue
            self._seeded.add(trial._trial_id)
            storage.record_heartbeat(trial._trial_id)  # type: ignore[attr-defined]

    def _parent_running(self) -> bool:
        # Not the row alone: a killed parent's job stays "running" until someone opens
        # the project, and its orphaned worker would spend the whole budget meanwhile.
        assert self.parent_job is not None
        return job_alive(self.ctx.conn, self.parent_job)

    def _report(self, epoch: str = "") -> None:
        text = f"{self.counts.finished}/{self.target} trials, {self.note}{epoch}"
        self.reporter.update(min(self.counts.finished, self.target), self.target, text)

    def _on_epoch(self, epoch: int, epochs: int) -> None:
        kill_point("trial-epoch")
        self._report(f"; trial epoch {epoch}/{epochs}")
        if self.parent_job is not None and not self._parent_running():
            raise CancelledError("the tune job stopped")
