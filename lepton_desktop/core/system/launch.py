"""How a worker process is started: which executable, which flags, which folder.

Workers never import code from the folder the user launched from. From source the
interpreter runs with ``-P`` (Python 3.11+: the current folder and the script's folder
are not put on ``sys.path``; the flag is passed on to the processes they spawn, such
as ``serve --workers N``'s), and in a private, empty working folder
(:func:`~lepton_desktop.paths.worker_dir`), so even an empty entry in ``PYTHONPATH``
points nowhere useful. A frozen app starts its own executable, whose ``sys.path`` is
the bundle.

A worker also stops when its launcher dies (:mod:`~lepton_desktop.core.system.lifeline`):
the launcher names itself in the worker's environment.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from lepton_desktop import paths
from lepton_desktop.core.processes import SAFE_PATH_ENV
from lepton_desktop.core.system.lifeline import PARENT_ENV


def cli_argv() -> list[str]:
    """The command that runs ``lepton-desktop`` from this installation, isolated."""
    if paths.frozen():
        return [sys.executable]
    return [sys.executable, "-P", "-m", "lepton_desktop"]


def worker_argv(kind: str, project: Path, job_id: int) -> list[str]:
    """The command line of a worker process for one job (the project's path absolute)."""
    return [*cli_argv(), "worker", kind, "--project", str(Path(project).absolute()),
            "--job", str(job_id)]  # fmt: skip


def worker_cwd() -> str:
    """The working folder of worker processes (never the user's current folder)."""
    return str(paths.worker_dir())


def worker_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a worker: ``base`` (default: this process's), unbuffered.

    The worker learns its launcher's pid (this process), to stop when it dies. From
    source (not installed), the package's folder goes on ``PYTHONPATH`` so that
    ``python -m lepton_desktop`` finds it from the workers' own folder.
    """
    env = dict(os.environ if base is None else base)
    env["PYTHONUNBUFFERED"] = "1"
    env[SAFE_PATH_ENV] = "1"  # -P for whatever Python the worker starts in turn
    env[PARENT_ENV] = str(os.getpid())
    if not paths.frozen():
        root = str(paths.resources_dir().parent)
        current = env.get("PYTHONPATH", "")
        if root not in current.split(os.pathsep):
            env["PYTHONPATH"] = root + (os.pathsep + current if current else "")
    return env
