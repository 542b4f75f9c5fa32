"""Projects and datasets: ``new``, ``info``, ``import``, ``prep`` and ``demo``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lepton_desktop.cli.common import (
    Command,
    open_project,
    parse_split,
    print_json,
    queue_and_run,
)

if TYPE_CHECKING:
    from lepton_desktop.core.project import Project


def _add_new(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("new", help="create an empty project file")
    p.add_argument("project", type=Path)
    return p


def _add_info(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("info", help="summarise a project")
    p.add_argument("project", type=Path)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def _add_import(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("import", help="import a CSV, Parquet or .npz file, or an image folder")
    p.add_argument("project", type=Path)
    p.add_argument("source", type=Path)
    p.add_argument(
        "--name", required=True, help="dataset name (an existing one gets a new version)"
    )
    p.add_argument("--kind", choices=("tabular", "images", "timeseries"))
    p.add_argument("--target", help="the column to predict")
    p.add_argument(
        "--time-column", help="time series: the time column (default: first date column)"
    )
    p.add_argument("--json", action="store_true")
    return p


def _add_prep(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("prep", help="preprocess a dataset into a new version")
    p.add_argument("project", type=Path)
    p.add_argument("dataset", help="NAME (latest version) or NAME:VERSION")
    p.add_argument("--dedupe", action="store_true", help="remove duplicate rows (runs first)")
    p.add_argument("--fill", choices=("mean", "median", "mode", "zero", "drop"))
    p.add_argument(
        "--fill-time",
        choices=("linear", "time", "ffill"),
        default="linear",
        help="time series: fill the target and values in time (default linear); "
        "missing steps of the grid are added, no row is dropped",
    )
    p.add_argument("--scale", choices=("standard", "minmax", "none"), default="none")
    p.add_argument("--onehot", action="store_true", help="one-hot encode categorical columns")
    p.add_argument("--split", help="train,val,test fractions, e.g. 0.7,0.15,0.15")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--pii",
        choices=("drop", "hash", "mask"),
        help="drop, hash (keyed) or mask every column found to hold personal data",
    )
    p.add_argument(
        "--pii-column",
        action="append",
        default=[],
        metavar="COL=ACTION",
        help="treat one column: drop, hash, mask or keep (repeatable)",
    )
    p.add_argument("--json", action="store_true")
    return p


def _add_demo(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("demo", help="create the demo project from the bundled sample data")
    p.add_argument("project", type=Path, nargs="?", help="default: the per-user demo path")
    return p


def cmd_new(args: argparse.Namespace) -> None:
    """``new PROJECT``."""
    from lepton_desktop.core.project import Project

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
        for found in d["pii"]:
            print(
                f"    personal data: {found['column']} ({found['kind']}, "
                f"{found['share']:.0%} of its cells)"
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

    def check(project: Project) -> None:
        project.check_intact()
        project.check_import(
            args.source.resolve(),
            args.name,
            kind=args.kind,
            target=args.target,
            time_column=args.time_column,
        )

    result = queue_and_run(
        args.project, "import", job_args, f"importing {args.source.name}", check=check
    )
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
        fill_time=args.fill_time,
        pii=args.pii,
        pii_columns=_pii_columns(args.pii_column),
    )

    def check(project: Project) -> None:
        version = project.dataset(args.dataset)
        project.check_intact(version)
        options.validate(version)

    job_args = {"dataset": args.dataset, "options": options.to_dict()}
    result = queue_and_run(
        args.project, "prep", job_args, f"preparing {args.dataset}", unit="rows", check=check
    )
    _report(result, args.json, "prepared")


def _pii_columns(given: list[str]) -> dict[str, str]:
    from lepton_desktop.core.errors import InvalidOptionError

    columns: dict[str, str] = {}
    for item in given:
        name, sep, action = item.rpartition("=")
        if not sep or not name:
            raise InvalidOptionError(
                f"--pii-column {item!r}: write COLUMN=ACTION (drop, hash, mask or keep)"
            )
        columns[name] = action
    return columns


def _report(result: dict[str, Any], as_json: bool, verb: str) -> None:
    if as_json:
        print_json(result)
    else:
        print(f"{verb} {result['dataset']}: {result['rows']:,} rows, {result['columns']} columns")
    for warning in result.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)


def cmd_demo(args: argparse.Namespace) -> None:
    """``demo [PROJECT]``: build the demo project from the bundled sample data."""
    from lepton_desktop.core.demo import create_demo
    from lepton_desktop.paths import demo_project_path

    path = args.project or demo_project_path()
    create_demo(path)
    print(f"created {path}")


#: This group's subcommands, for ``entry.build_parser``.
COMMANDS = (
    Command("new", _add_new, cmd_new),
    Command("info", _add_info, cmd_info),
    Command("import", _add_import, cmd_import),
    Command("prep", _add_prep, cmd_prep),
    Command("demo", _add_demo, cmd_demo),
)
