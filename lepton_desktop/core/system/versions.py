"""What this installation is made of: the versions a bug report needs, and the GPU.

Shared by ``lepton-desktop --version --verbose``, ``selftest --json``, the About
dialog and Help → Copy Diagnostics. Versions come from the installed distributions'
metadata (no import), falling back to the module's ``__version__`` where a frozen
build carries no metadata; only the GPU line imports torch (and asks NVML first).
"""

from __future__ import annotations

import importlib
import platform
import sys
from importlib import metadata

from lepton_desktop import __version__
from lepton_desktop.core.store.db import sqlite_library_version
from lepton_desktop.core.store.migrations import SCHEMA_VERSION

#: Distribution name -> module to ask when its metadata is missing (frozen builds).
COMPONENTS = {
    "torch": "torch",
    "PySide6-Essentials": "PySide6",
    "numpy": "numpy",
    "optuna": "optuna",
    "scikit-learn": "sklearn",
    "pandas": "pandas",
    "pyarrow": "pyarrow",
    "onnxruntime": "onnxruntime",
    "fastapi": "fastapi",
    "uvicorn": "uvicorn",
    "pyqtgraph": "pyqtgraph",
}


def versions() -> dict[str, str]:
    """The app, Python, the OS, SQLite, the project schema and the main libraries."""
    found = {
        "lepton-desktop": __version__,
        "python": f"{platform.python_version()} ({platform.python_implementation()}, "
        f"{'frozen' if getattr(sys, 'frozen', False) else sys.executable})",
        "os": f"{platform.system()} {platform.release()} ({platform.platform()}, "
        f"{platform.machine()})",
        "sqlite": sqlite_library_version(),
        "project schema": str(SCHEMA_VERSION),
    }
    for distribution, module in COMPONENTS.items():
        found[distribution] = component_version(distribution, module)
    return found


def component_version(distribution: str, module: str) -> str:
    """The installed version of ``distribution`` (``not installed`` when absent)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        pass
    try:
        return str(getattr(importlib.import_module(module), "__version__", "unknown"))
    except ImportError:
        return "not installed"


def gpu() -> str:
    """The GPUs this machine offers to training, or why there are none.

    NVML names NVIDIA devices without loading torch's CUDA runtime; torch then says
    whether its build can use them (a CPU build cannot), and answers for Apple's MPS.
    """
    names = _nvml_names()
    import torch  # a second or two: only for diagnostics, never at start-up

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    build = f"torch CUDA {torch.version.cuda}" if torch.version.cuda else "torch CPU build"
    if cuda:
        names = names or [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        return f"{', '.join(names)} (CUDA available; {build})"
    if mps:
        return f"Apple MPS (available; {build})"
    if names:
        return f"{', '.join(names)} (not usable by this {build})"
    return f"none found ({build})"


def _nvml_names() -> list[str]:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no driver, no library: the usual case without an NVIDIA GPU
        return []
    try:
        count = pynvml.nvmlDeviceGetCount()
        return [str(pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i)))
                for i in range(count)]  # fmt: skip
    except Exception:
        return []
    finally:
        pynvml.nvmlShutdown()
