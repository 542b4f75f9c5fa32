"""Running a study: trial processes sharing a budget, then the best model.

A ``tune`` job runs trials itself and, for ``--jobs K``, starts K-1 ``trial`` worker
processes (``lepton-desktop worker trial``), each a job of its own with heartbeats and
a cancel flag. Every process loops: count the study's trials in the storage, stop
when enough are finished (completed or pruned), else run one more. Several ``tune``
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

import contextlib
import datetime
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from lepton_desktop.core.entities import Job, Study
from lepton_desktop.core.errors import CancelledError, LeptonError
from lepton_desktop.core.store import jobs as job_store
from lepton_desktop.core.store import tuning as tuning_store
from lepton_desktop.core.tuning import storage as storages
from lepton_desktop.core.tuning.trial import TrialObjective

if TYPE_CHECKING:
    from lepton_desktop.core.progress import Reporter
    from lepton_desktop.core.project import Project

#: Seconds between looks at the study while other processes finish their trials.
POLL_S = 0.5
#: This many failed trials in a row (errors, not pruning) end the study as failed.
MAX_FAILURES_IN_A_ROW = 5
#: Seconds a trial worker gets to stop after its cancel flag, before SIGTERM/SIGKILL.
STOP_GRACE_S = 10.0


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


def load_study(study: Study, project: Project, *, seed: int | None = None) -> optuna.Study:
    """The Optuna study behind ``study``, with its sampler and pruner."""
    storage = storages.open_storage(study.storage, project.path)
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
        project: the open project.
        study: the study record.
        target: finished trials (completed or pruned) the study must reach.
        reporter: progress (trials done of target, best so far); raises to cancel.
        index: 0 for the tune job's own process, 1.. for its trial workers.
        parent_job: a trial worker's tune job: the worker stops when it is gone.
    """

    def __init__(
        self,
        project: Project,
        study: Study,
        target: int,
        reporter: Reporter,
        *,
        index: int = 0,
        parent_job: int | None = None,
    ) -> None:
        self.project, self.study, self.target = project, study, target
        self.reporter, self.parent_job = reporter, parent_job
        seed = storages.process_seed(
            int(study.options.get("seed", 0)), index, study.storage is not None
        )
        self.optuna_study = load_study(study, project, seed=seed)
        self.heartbeat = storages.has_heartbeat(self.optuna_study._storage)
        self.objective = TrialObjective(project, study, study.jobs, self._on_epoch)
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
            counts = tuning_store.trial_counts(self.project.conn, self.study.optuna_study_id)
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
        assert self.parent_job is not None
        return job_store.get(self.project.conn, self.parent_job).status == "running"

    def _report(self, epoch: str = "") -> None:
        text = f"{self.counts.finished}/{self.target} trials, {self.note}{epoch}"
        self.reporter.update(min(self.counts.finished, self.target), self.target, text)

    def _on_epoch(self, epoch: int, epochs: int) -> None:
        self._report(f"; trial epoch {epoch}/{epochs}")
        if self.parent_job is not None and not self._parent_running():
            raise CancelledError("the tune job stopped")


# -- trial worker processes ------------------------------------------------------------


def start_workers(project: Project, study: Study, job: Job, target: int) -> list[_Worker]:
    """Start ``study.jobs - 1`` trial worker processes beside this one."""
    from lepton_desktop.paths import worker_argv

    workers = []
    for index in range(1, study.jobs):
        args = {"study": study.name, "n_trials": target, "parent": job.id, "index": index}
        job_id = project.create_job("trial", args)
        process = subprocess.Popen(
            worker_argv("trial", project.path, job_id),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        workers.append(_Worker(job_id, process))
    return workers


@dataclass
class _Worker:
    job_id: int
    process: subprocess.Popen[bytes]


def wait_workers(workers: list[_Worker], reporter: Reporter, target: int, note: str) -> None:
    """Wait for the trial workers to end (they stop once the budget is met)."""
    while any(w.process.poll() is None for w in workers):
        reporter.update(target, target, note)  # lets a cancel through
        time.sleep(POLL_S)


def stop_workers(project: Project, workers: list[_Worker]) -> None:
    """Cancel the trial workers, then terminate and kill any that linger."""
    for worker in workers:
        if worker.process.poll() is None:
            job_store.request_cancel(project.conn, worker.job_id)
    deadline = time.monotonic() + STOP_GRACE_S
    for worker in workers:
        try:
            worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.process.terminate()
            try:
                worker.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
    project.recover_stale_jobs()
    for worker in workers:
        status = project.job(worker.job_id).status
        if status == "queued":  # its process died before it could start the job
            job_store.request_cancel(project.conn, worker.job_id)
        elif status == "succeeded":
            job_store.delete(project.conn, worker.job_id)  # done: leave no clutter


# -- jobs ----------------------------------------------------------------------------


def trial_job(project: Project, job: Job, reporter: Reporter) -> dict[str, Any]:
    """A ``trial`` worker: args ``{"study", "n_trials", "parent", "index"}``."""
    study = tuning_store.get(project.conn, job.args["study"])
    loop = TrialLoop(
        project,
        study,
        int(job.args["n_trials"]),
        reporter,
        index=int(job.args.get("index", 1)),
        parent_job=job.args.get("parent"),
    )
    return {"study": study.name, "trials": loop.run()}


def tune_job(project: Project, job: Job, reporter: Reporter) -> dict[str, Any]:
    """A ``tune`` job: args ``{"study": NAME, "n_trials": TARGET}``; see the module doc."""
    import torch

    from lepton_desktop.core.tuning.finalize import finalize, record_best

    name, target = job.args["study"], int(job.args["n_trials"])
    tuning_store.update(project.conn, name, status="running", job_id=job.id, error=None)
    study = tuning_store.get(project.conn, name)
    threads = torch.get_num_threads()  # a script's own setting comes back afterwards
    workers: list[_Worker] = []
    try:
        workers = start_workers(project, study, job, target)
        loop = TrialLoop(project, study, target, reporter)
        loop.run()
        wait_workers(workers, reporter, target, f"{loop.counts.finished}/{target} trials")
        return finalize(project, study, job, reporter)
    except (CancelledError, KeyboardInterrupt):
        with contextlib.suppress(Exception):  # the best so far, if the storage answers
            record_best(project, study)
        tuning_store.update(project.conn, name, status="stopped", finished_at=time.time())
        raise
    except BaseException as exc:
        tuning_store.update(
            project.conn, name, status="failed", error=str(exc), finished_at=time.time()
        )
        raise
    finally:
        stop_workers(project, workers)
        torch.set_num_threads(threads)
