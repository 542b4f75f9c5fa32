"""The ``tune`` and ``trial`` jobs: a study's trial processes, then its best model.

A ``tune`` job runs a :class:`~lepton_desktop.core.tuning.runner.TrialLoop` itself and,
for ``--jobs K``, starts K-1 ``trial`` worker processes beside it, each a job of its own
(heartbeats, cancel flag) that stops once the shared budget is met or its parent job
is gone. When the trials are done the tune job finalizes the study (retrains and
registers the best trial, see :mod:`lepton_desktop.core.tuning.finalize`); when it is
stopped or fails, it records the best so far and stops its trial workers.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from lepton_desktop.core.context import ProjectContext
from lepton_desktop.core.entities import Job, Study
from lepton_desktop.core.errors import CancelledError
from lepton_desktop.core.jobs import recover_stale_jobs
from lepton_desktop.core.progress import Reporter
from lepton_desktop.core.store import jobs as job_store
from lepton_desktop.core.store import tuning as tuning_store
from lepton_desktop.core.system.launch import worker_argv, worker_cwd, worker_env

#: Seconds a trial worker gets to stop after its cancel flag, before SIGTERM/SIGKILL.
STOP_GRACE_S = 10.0


# -- trial worker processes ------------------------------------------------------------


def start_workers(ctx: ProjectContext, study: Study, job: Job, target: int) -> list[_Worker]:
    """Start ``study.jobs - 1`` trial worker processes beside this one."""
    workers = []
    for index in range(1, study.jobs):
        args = {"study": study.name, "n_trials": target, "parent": job.id, "index": index}
        job_id = job_store.create(ctx.conn, "trial", args)
        process = subprocess.Popen(
            worker_argv("trial", ctx.path, job_id),
            cwd=worker_cwd(),
            env=worker_env(),
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


def wait_workers(
    workers: list[_Worker], reporter: Reporter, target: int, note: str, poll_s: float
) -> None:
    """Wait for the trial workers to end (they stop once the budget is met)."""
    while any(w.process.poll() is None for w in workers):
        reporter.update(target, target, note)  # lets a cancel through
        time.sleep(poll_s)


def stop_workers(ctx: ProjectContext, workers: list[_Worker]) -> None:
    """Cancel the trial workers, then terminate and kill any that linger."""
    for worker in workers:
        if worker.process.poll() is None:
            job_store.request_cancel(ctx.conn, worker.job_id)
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
    recover_stale_jobs(ctx.conn)
    for worker in workers:
        status = job_store.get(ctx.conn, worker.job_id).status
        if status == "queued":  # its process died before it could start the job
            job_store.request_cancel(ctx.conn, worker.job_id)
        elif status == "succeeded":
            job_store.delete(ctx.conn, worker.job_id)  # done: leave no clutter


# -- jobs ----------------------------------------------------------------------------


def trial_job(ctx: ProjectContext, job: Job, reporter: Reporter) -> dict[str, Any]:
    """A ``trial`` worker: args ``{"study", "n_trials", "parent", "index"}``."""
    from lepton_desktop.core.tuning.runner import TrialLoop

    study = tuning_store.get(ctx.conn, job.args["study"])
    loop = TrialLoop(
        ctx,
        study,
        int(job.args["n_trials"]),
        reporter,
        index=int(job.args.get("index", 1)),
        parent_job=job.args.get("parent"),
    )
    return {"study": study.name, "trials": loop.run()}


def tune_job(ctx: ProjectContext, job: Job, reporter: Reporter) -> dict[str, Any]:
    """A ``tune`` job: args ``{"study": NAME, "n_trials": TARGET}``; see the module doc."""
    import torch

    from lepton_desktop.core.tuning.finalize import finalize, record_best
    from lepton_desktop.core.tuning.runner import POLL_S, TrialLoop

    name, target = job.args["study"], int(job.args["n_trials"])
    tuning_store.update(ctx.conn, name, status="running", job_id=job.id, error=None)
    study = tuning_store.get(ctx.conn, name)
    threads = torch.get_num_threads()  # a script's own setting comes back afterwards
    workers: list[_Worker] = []
    try:
        workers = start_workers(ctx, study, job, target)
        loop = TrialLoop(ctx, study, target, reporter)
        loop.run()
        note = f"{loop.counts.finished}/{target} trials"
        wait_workers(workers, reporter, target, note, POLL_S)
        return finalize(ctx, study, job, reporter)
    except (CancelledError, KeyboardInterrupt):
        with contextlib.suppress(Exception):  # the best so far, if the storage answers
            record_best(ctx, study)
        tuning_store.update(ctx.conn, name, status="stopped", finished_at=time.time())
        raise
    except BaseException as exc:
        tuning_store.update(
            ctx.conn, name, status="failed", error=str(exc), finished_at=time.time()
        )
        raise
    finally:
        stop_workers(ctx, workers)
        torch.set_num_threads(threads)
