"""``worker KIND --project P --job N``: run one queued job (the GUI starts this).

A worker lives only as long as its launcher (the GUI, or a ``tune`` job for its trial
workers): when that process dies, the worker cancels its job and exits.

``worker strong-baseline`` is the one worker without a job: a training process starts
it to fit the run's strong baseline beside the network, speaking over its stdin and
stdout (:class:`~lepton_desktop.core.training.strong_baseline.BaselineProcess`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lepton_desktop.cli.common import Command, run_queued_job
from lepton_desktop.core import faults
from lepton_desktop.core.errors import InvalidOptionError
from lepton_desktop.core.system.lifeline import die_with_parent

#: The job kinds a worker process runs (the GUI's QProcess jobs, tune's trial workers).
KINDS = ("import", "prep", "train", "export", "tune", "trial", "serve", "requests")
#: The worker that a training process starts beside itself (no project, no job):
#: ``strong_baseline.STRONG_BASELINE_KIND``, named here so that ``--help`` loads no numpy.
BESIDE = "strong-baseline"


def _add_worker(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("worker", help="internal: run one queued job (started by the GUI)")
    p.add_argument("kind", choices=(*KINDS, BESIDE))
    p.add_argument("--project", type=Path, help=f"the project file (all but {BESIDE})")
    p.add_argument("--job", type=int, help=f"the queued job's id (all but {BESIDE})")
    return p


def cmd_worker(args: argparse.Namespace) -> int:
    """``worker KIND --project P --job N``: exit 0 when the job succeeded, else 1."""
    faults.set_role(args.kind)
    die_with_parent()
    if args.kind == BESIDE:
        from lepton_desktop.core.training.strong_baseline import serve_stdio

        return serve_stdio()
    if args.project is None or args.job is None:
        raise InvalidOptionError(f"worker {args.kind}: --project and --job are required")
    job = run_queued_job(args.project, args.job, args.kind)
    return 0 if job.status == "succeeded" else 1


#: This group's subcommands, for ``entry.build_parser``.
COMMANDS = (Command("worker", _add_worker, cmd_worker),)
