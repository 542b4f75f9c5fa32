"""Where things live: bundled resources, per-user data, and how to start a worker."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_PACKAGE_ROOT = Path(__file__).resolve().parent


def frozen() -> bool:
    """True inside a PyInstaller build."""
    return bool(getattr(sys, "frozen", False))


def resources_dir() -> Path:
    """The ``resources/`` folder: next to the package from source, in the bundle when frozen."""
    if frozen():
        return Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent)) / "resources"
    return _PACKAGE_ROOT.parent / "resources"


def sample_data_dir() -> Path:
    """Small public datasets shipped for the demo project and the tests."""
    return resources_dir() / "sample_data"


def user_data_dir() -> Path:
    """Per-user folder for the demo project (XDG on Linux, the OS's place elsewhere)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "lepton-desktop"


def demo_project_path() -> Path:
    """Where the demo project is created on first use."""
    return user_data_dir() / "demo.lepton"


def cli_argv() -> list[str]:
    """The command that runs ``lepton-desktop`` from this installation.

    A frozen app cannot run ``python -m``, so it starts its own executable; from
    source the current interpreter runs the package.
    """
    if frozen():
        return [sys.executable]
    return [sys.executable, "-m", "lepton_desktop"]


def worker_argv(kind: str, project: Path, job_id: int) -> list[str]:
    """The command line of a worker process for one job."""
    return [*cli_argv(), "worker", kind, "--project", str(project), "--job", str(job_id)]
