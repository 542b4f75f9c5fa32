"""The headless commands behind ``lepton-desktop`` (argument parsing is in cli.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lepton_desktop.cli import parse_split, print_json
from lepton_desktop.core.errors import LeptonError
from lepton_desktop.core.jobs import run_job
from lepton_desktop.core.project import Project
from lepton_desktop.terminal import TerminalProgress
from lepton_desktop.workers.kinds import JOB_FUNCTIONS, run_worker


def open_project(path: Path) -> Project:
    """Open a project for a command, upgrading an older file (a backup is kept)."""
    project = Project.open(path, upgrade=True)
    if project.upgraded_from is not None:
        print(
            f"note: upgraded {path} from schema {project.upgraded_from} to "
            f"{project.schema_version}; backup: {project.backup_path}",
            file=sys.stderr,
        )
    return project


def cmd_new(args: argparse.Namespace) -> None:
    """``new PROJECT``."""
    Project.create(args.project).close()
    print(f"created {args.project}")


def cmd_info(args: argparse.Namespace) -> None:
    """``info PROJECT [--json]``."""
    with open_project(args.project) as project:
        info = project.info()
    if args.json:
        print_json(info)
        return
    print(f"{info['path']}  (schema {info['schema_version']})")
    if not info["datasets"]:
        print("no datasets")
    for d in info["datasets"]:
        splits = "/".join(str(d["splits"][k]) for k in ("train", "val", "test"))
        target = f", target {d['target']}" if d["target"] else ""
        print(
            f"  {d['ref']:<24} {d['kind']:<10} {d['rows']:>10,} rows x {d['columns']} columns"
            f"{target}, split {splits}"
        )
    _print_studies(info["studies"])


def _print_studies(studies: list[dict[str, Any]]) -> None:
    for s in studies:
        best = "no best yet" if s["best_value"] is None else f"best {s['best_value']:.4g}"
        model = f", model {s['model']}" if s["model"] else ""
        head = f"  study {s['name']:<18} {s['status']:<9} {sum(s['trials'].values())} trials"
        print(f"{head}, {s['metric']} {best}{model}")


def cmd_import(args: argparse.Namespace) -> None:
    """``import PROJECT SOURCE --name NAME [--kind K] [--target COL]``."""
    job_args = {
        "source": str(args.source.resolve()),
        "name": args.name,
        "kind": args.kind,
        "target": args.target,
        "time_column": args.time_column,
    }
    result = _run_foreground(args.project, "import", job_args, f"importing {args.source.name}")
    _report(result, args.json, "imported")


def cmd_prep(args: argparse.Namespace) -> None:
    """``prep PROJECT DATASET [--dedupe] [--fill F] [--scale S] [--split a,b,c] [--seed N]``."""
    from lepton_desktop.core.datasets.prep import PrepOptions

    options = PrepOptions(
        dedupe=args.dedupe,
        fill=args.fill,
        scale=args.scale,
        onehot=args.onehot,
        split=parse_split(args.split),
        seed=args.seed,
    )
    with open_project(args.project) as project:
        options.validate(project.dataset(args.dataset))
    job_args = {"dataset": args.dataset, "options": options.to_dict()}
    result = _run_foreground(
        args.project, "prep", job_args, f"preparing {args.dataset}", unit="rows"
    )
    _report(result, args.json, "prepared")


TRAIN_OPTIONS = (
    "arch",
    "task",
    "target",
    "epochs",
    "batch_size",
    "lr",
    "optimizer",
    "loss",
    "class_weights",
    "schedule",
    "patience",
    "grad_clip",
    "weight_decay",
    "hidden",
    "dropout",
    "channels",
    "augment",
    "flip",
    "cell",
    "window",
    "horizon",
    "device",
    "seed",
    "model_name",
)


def cmd_train(args: argparse.Namespace) -> None:
    """``train PROJECT DATASET --arch A [...]`` or ``train PROJECT --resume RUN``."""
    from lepton_desktop.core.training.config import TrainConfig

    with open_project(args.project) as project:
        if args.resume is not None:
            job_id = project.runs.queue_resume(args.resume)
        else:
            if not args.dataset or not args.arch:
                raise LeptonError("train: give DATASET and --arch (or --resume RUN_ID)")
            options = {k: v for k in TRAIN_OPTIONS if (v := getattr(args, k)) is not None}
            _, job_id = project.runs.queue(args.dataset, TrainConfig.from_dict(options))
    result = _run_job(args.project, job_id, "train", "training", unit="epoch")
    if args.json:
        print_json(result)
        return
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in result["metrics"].items())
    baseline = ", ".join(f"{k} {v:.4g}" for k, v in result["baseline"].items())
    print(
        f"run {result['run_id']} {result['status']}: model {result['model']} "
        f"({result['epochs']} epochs on {result['device']})"
    )
    print(f"  test:     {metrics}")
    print(f"  baseline: {baseline}")


def cmd_models(args: argparse.Namespace) -> None:
    """``models PROJECT [--json] [--alias MODEL ALIAS]``."""
    with open_project(args.project) as project:
        if args.alias:
            project.models.set_alias(*args.alias)
        summary = project.models.summary()
    if args.json:
        print_json({"models": summary})
        return
    if not summary:
        print("no models yet")
    for m in summary:
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in m["metrics"].items())
        aliases = f" @{', @'.join(m['aliases'])}" if m["aliases"] else ""
        head = f"{m['model']:<28} {m['arch']:<4} {m['task']:<15} run {m['run_id']}"
        print(f"  {head}{aliases}  {metrics}")


def cmd_demo(args: argparse.Namespace) -> None:
    """``demo [PROJECT]``: build the demo project from the bundled sample data."""
    from lepton_desktop.core.demo import create_demo
    from lepton_desktop.paths import demo_project_path

    path = args.project or demo_project_path()
    create_demo(path)
    print(f"created {path}")


def cmd_worker(args: argparse.Namespace) -> int:
    """``worker KIND --project P --job N``: run one queued job (the GUI starts this)."""
    return run_worker(args.kind, args.project, args.job)


def _run_foreground(
    project_path: Path, kind: str, job_args: dict[str, Any], description: str, unit: str = "B"
) -> dict[str, Any]:
    # The CLI queues a job and runs the worker code itself, in the foreground: the
    # same path as the GUI's worker process, with a progress bar instead of polling.
    with open_project(project_path) as project:
        job_id = project.create_job(kind, job_args)
    return _run_job(project_path, job_id, kind, description, unit)


def _run_job(
    project_path: Path, job_id: int, kind: str, description: str, unit: str
) -> dict[str, Any]:
    bar = TerminalProgress(description, unit=unit)
    try:
        job = run_job(project_path, job_id, JOB_FUNCTIONS[kind], echo=bar)
    finally:
        bar.close()
    if job.status != "succeeded":
        with Project.open(project_path) as project:
            project.forget_job(job_id)  # the error is printed below; leave no trace
        raise LeptonError(job.error or job.status)
    return job.result or {}


def _report(result: dict[str, Any], as_json: bool, verb: str) -> None:
    if as_json:
        print_json(result)
    else:
        print(f"{verb} {result['dataset']}: {result['rows']:,} rows, {result['columns']} columns")
