"""``lepton-desktop export``: write a model version as TorchScript, ONNX, a bundle or a
Triton repository (the work is in core/export)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lepton_desktop.cli.common import Command, open_project, print_json


def _add_export(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("export", help="export a model as TorchScript, ONNX, a bundle or Triton")
    p.add_argument("project", type=Path)
    p.add_argument("model", help="NAME (latest), NAME:VERSION or NAME@ALIAS")
    p.add_argument("--format", required=True, choices=("torchscript", "onnx", "bundle", "triton"))
    p.add_argument(
        "--out", required=True, type=Path, help="file to write (triton: repository directory)"
    )
    p.add_argument("--json", action="store_true")
    return p


def cmd_export(args: argparse.Namespace) -> None:
    """``export PROJECT MODEL[:VERSION] --format F --out PATH [--json]``.

    Runs in the foreground without a job row: an export reads the project and writes
    only ``--out``, so a failed one leaves the project exactly as it was.
    """
    from lepton_desktop.cli.progress import TerminalProgress
    bar = TerminalProgress(f"exporting {args.model}", unit="step")
    try:
        with open_project(args.project) as project:
            result = project.export(args.model, args.format, args.out, reporter=bar)
    finally:
        bar.close()
    if args.json:
        print_json(result.to_dict())
        return
    size = f"{result.bytes / 1e6:.2f} MB" if result.bytes >= 100_000 else f"{result.bytes:,} B"
    print(f"exported {result.model} as {result.format}: {result.path} ({size})")
    print(f"  checked on {result.checked_on}: max abs diff {result.max_abs_diff:.3g}")
    if result.sha256:
        print(f"  sha256 {result.sha256}")
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)


#: This group's subcommands, for ``entry.build_parser``.
COMMANDS = (Command("export", _add_export, cmd_export),)
