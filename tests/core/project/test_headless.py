"""The core, the workers and the command line import no Qt (DESIGN §1)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import lepton_desktop

SCRIPT = """
import importlib, pathlib, sys
import lepton_desktop
root = pathlib.Path(lepton_desktop.__file__).parent
# Walk the files, not the packages: pkgutil.walk_packages would import gui/ to list it.
parts = [p.relative_to(root).with_suffix("").parts for p in root.rglob("*.py")]
names = sorted(
    ".".join(("lepton_desktop", *part)).removesuffix(".__init__")
    for part in parts if "gui" not in part
)
for name in names:
    importlib.import_module(name)
bad = [m for m in ("PySide6", "pyqtgraph", "lepton_desktop.gui") if m in sys.modules]
print(len(names), bad)
sys.exit(1 if bad else 0)
"""


def test_core_workers_and_cli_import_no_qt() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    count = int(proc.stdout.split()[0])
    assert count >= len(list(pkgutil.iter_modules(lepton_desktop.__path__))) - 1


def test_importing_the_package_imports_neither_qt_nor_torch() -> None:
    code = (
        "import lepton_desktop, sys; print([m for m in ('torch', 'PySide6') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
