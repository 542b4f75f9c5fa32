"""Where things live: bundled resources and per-user data (processes: core.system.launch)."""

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


def user_log_dir() -> Path:
    """Per-user folder for the app's logs: the XDG state folder on Linux, the OS's place elsewhere.

    Logs are state, not data (the XDG base directory spec): on Linux
    ``$XDG_STATE_HOME/lepton-desktop/log`` (``~/.local/state/...``), on macOS
    ``~/Library/Logs/Lepton Desktop``, on Windows ``%LOCALAPPDATA%\\Lepton Desktop\\Logs``.
    """
    if sys.platform == "win32":
        local = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
        return local / "Lepton Desktop" / "Logs"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Logs" / "Lepton Desktop"
    base = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state"))
    return base / "lepton-desktop" / "log"


def demo_project_path() -> Path:
    """Where the demo project is created on first use."""
    return user_data_dir() / "demo.lepton"


def worker_dir() -> Path:
    """A private, empty folder that worker processes run in (see ``core.system.launch``).

    Never the folder the user launched from: a worker (or a process it spawns) must
    not find modules, or anything else, that happen to sit there.
    """
    folder = user_data_dir() / "workers"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder
