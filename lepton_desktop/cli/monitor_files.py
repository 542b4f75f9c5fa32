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
