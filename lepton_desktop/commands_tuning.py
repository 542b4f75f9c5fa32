"""``lepton-desktop tune``: create (or join, or extend) a study and run it in the foreground.

The command queues a ``tune`` job and runs the worker code itself with a progress
bar (trials done, best so far), exactly as the GUI's worker process would.
"""

from __future__ import annotations

import argparse
from typing import Any

from lepton_desktop.cli import print_json
from lepton_desktop.commands import _run_job, open_project
from lepton_desktop.core.errors import LeptonError


def cmd_tune(args: argparse.Namespace) -> None:
    """``tune PROJECT DATASET --arch A --trials N [...]`` or ``tune PROJECT --resume S``."""
    with open_project(args.project) as project:
        if args.resume is not None:
            if args.dataset is not None:
                raise LeptonError("tune: give DATASET or --resume STUDY, not both")
            name = args.resume
            job_id = project.tuning.queue(name, args.trials, jobs=args.jobs)
        else:
            name = _create(project, args)
            job_id = project.tuning.queue(name)
    result = _run_job(args.project, job_id, "tune", f"tuning {name}", unit="trial")
    if args.json:
        print_json(result)
        return
    _print_result(result)


def _create(project: Any, args: argparse.Namespace) -> str:
    from lepton_desktop.core.tuning.space import load_space

    if not args.dataset or not args.arch:
        raise LeptonError("tune: give DATASET and --arch (or --resume STUDY)")
    if args.trials is None:
        raise LeptonError("tune: give --trials N (how many trials to run)")
    objectives = [o for o in args.objectives.split(",") if o] if args.objectives else None
    study = project.tuning.create(
        args.dataset,
        args.arch,
        space=load_space(args.space) if args.space is not None else None,
        sampler=args.sampler or "tpe",
        pruner=args.pruner or "median",
        n_trials=args.trials,
        jobs=1 if args.jobs is None else args.jobs,
        metric=args.metric,
        objectives=objectives,
        storage=args.storage,
        name=args.study,
        epochs=args.epochs,
        seed=args.seed,
    )
    return str(study.name)


def _print_result(result: dict[str, Any]) -> None:
    trials = result["trials"]
    print(
        f"study {result['study']} {result['status']}: {result['n_trials']} trials "
        f"({trials['complete']} complete, {trials['pruned']} pruned, {trials['failed']} failed)"
    )
    params = ", ".join(f"{k}={_short(v)}" for k, v in (result["best_params"] or {}).items())
    if result["best_value"] is not None:
        print(
            f"  best {result['metric']} {result['best_value']:.4g} "
            f"(trial {result['best_trial']}): {params}"
        )
    for point in result.get("pareto", []):
        values = ", ".join(
            f"{name} {value:.4g}"
            for name, value in zip(result["objectives"], point["values"], strict=True)
        )
        print(f"  pareto trial {point['trial']}: {values}")
    if result["model"]:
        print(f"  model {result['model']}")


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
