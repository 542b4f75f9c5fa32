"""``monitor feedback`` (labels imported from a CSV) and ``monitor export`` (a report file)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lepton_desktop.cli.common import open_project, print_json


def add_feedback(actions: Any) -> None:
    p = actions.add_parser("feedback", help="import labels from a CSV of request_id,label[,row]")
    p.add_argument("project", type=Path)
    p.add_argument("file", type=Path, help="CSV with columns request_id,label and optionally row")
    p.add_argument("--json", action="store_true")


def feedback(args: argparse.Namespace) -> int:
    """Store every label of the file, or none (the error names the line)."""
    with open_project(args.project) as project:
        stored = project.import_feedback(args.file)
    if args.json:
        print_json(stored.to_dict())
        return 0
    models = ", ".join(f"{ref} {n:,}" for ref, n in sorted(stored.by_model.items()))
    print(f"stored {stored.labels:,} labels of {stored.requests:,} requests ({models})")
    return 0


def add_export(actions: Any) -> None:
    p = actions.add_parser("export", help="write the report to OUT.json or a self-contained "
                           "OUT.html")  # fmt: skip
    p.add_argument("project", type=Path)
    p.add_argument("out", type=Path, help="OUT.json (the monitor --json report, with alerts) "
                   "or OUT.html (tables and inline charts)")  # fmt: skip
    p.add_argument("--model", metavar="NAME[:VERSION]", help="one model (default: every model)")
    p.add_argument("--since", default="1h", help="15m, 1h, 24h, 7d, all, or N[smhdw] (default 1h)")
    p.add_argument("--json", action="store_true")


def export(args: argparse.Namespace, model: str | None, version: int | None) -> int:
    """Write the report file; say where and how big."""
    with open_project(args.project) as project:
        written = project.export_monitoring(args.out, args.since, model=model, version=version)
    if args.json:
        print_json(written)
    else:
        print(f"wrote {written['path']} ({written['bytes']:,} bytes, {written['format']})")
    return 0
