"""``lepton-desktop tune``: create (or join, or extend) a study and run it in the foreground.

The command queues a ``tune`` job and runs the worker code itself with a progress
bar (trials done, best so far), exactly as the GUI's worker process would.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lepton_desktop.cli.common import Command, open_project, print_json, run_in_foreground
from lepton_desktop.core.errors import LeptonError


def _add_tune(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("tune", help="tune hyperparameters with Optuna (or extend a study)")
    p.add_argument("project", type=Path)
    p.add_argument("dataset", nargs="?", help="NAME or NAME:VERSION (omit with --resume)")
    p.add_argument("--arch", choices=("mlp", "cnn", "rnn"))
    p.add_argument("--trials", type=int, help="trials to finish (with --resume: this many more)")
    p.add_argument("--sampler", help="tpe (default), gp, grid, random or cmaes")
    p.add_argument("--pruner", help="median (default), hyperband or none")
    p.add_argument("--jobs", type=int, help="trials at once on this machine (default 1)")
    p.add_argument("--storage", help="shared Optuna storage URL (default: the project file)")
    p.add_argument("--space", type=Path, help="search space, a .json or .toml file")
    p.add_argument("--metric", help="validation metric to optimize (default f1, or mse)")
    p.add_argument("--objectives", help="several objectives, e.g. f1,params")
    p.add_argument("--epochs", type=int, help="epochs per trial (default: as training decides)")
    p.add_argument("--study", help="the study's name (join it on a shared --storage)")
    p.add_argument("--resume", metavar="STUDY", help="extend a study with --trials more")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--dp-epsilon",
        type=float,
        metavar="E",
        help="train every trial privately (DP-SGD) at this ε, fixed for the study",
    )
    p.add_argument("--json", action="store_true")
    return p


def cmd_tune(args: argparse.Namespace) -> None:
    """``tune PROJECT DATASET --arch A --trials N [...]`` or ``tune PROJECT --resume S``."""
    with open_project(args.project) as project:
        project.check_intact()
        if args.resume is not None:
            if args.dataset is not None:
                raise LeptonError("tune: give DATASET or --resume STUDY, not both")
            if args.dp_epsilon is not None:
                raise LeptonError("tune: --dp-epsilon is fixed when a study is created")
            name = args.resume
            job_id = project.tuning.queue(name, args.trials, jobs=args.jobs)
        else:
            name = _create(project, args)
            job_id = project.tuning.queue(name)
    result = run_in_foreground(args.project, job_id, "tune", f"tuning {name}", unit="trial")
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
    project.check_intact(project.dataset(args.dataset))  # the rows every trial reads
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
        dp_epsilon=args.dp_epsilon,
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


#: This group's subcommands, for ``entry.build_parser``.
COMMANDS = (Command("tune", _add_tune, cmd_tune),)
