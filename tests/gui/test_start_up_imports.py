"""Start-up: the window is painted without the libraries only later work needs.

The real app is started in a fresh interpreter (``lepton-desktop`` with no project,
and with one), offscreen, and exits once its window is first painted; it then reports
which of the heavy libraries were imported. Importing them took most of the 3 s the
window used to need (optuna.importance alone pulled in scikit-learn, scipy and pandas).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lepton_desktop.gui.app import FIRST_PAINT_ENV, FIRST_PAINT_MARKER
from lepton_desktop.gui.instance import INSTANCE_ENV

pytestmark = [pytest.mark.gui, pytest.mark.slow]

#: What a painted window must not have imported: the tuning importances' chain, the
#: table reader, the training library, the server, numpy (the drift sketches' through
#: Project), the headless commands' modules (the command line's parser).
HEAVY = ("optuna", "optuna.importance", "sklearn", "scipy", "pandas", "torch", "pyarrow",
         "fastapi", "uvicorn", "pyqtgraph", "numpy", "lepton_desktop.cli.selftest",
         "lepton_desktop.cli.monitor", "lepton_desktop.cli.datasets")  # fmt: skip

# Notes which of the watched modules are loaded when the main window is first painted
# (an application-wide event filter sees the paint event before the window does).
_WATCH = """
import json, sys
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication, QMainWindow
watched = json.loads(sys.argv[1])
app = QApplication(sys.argv[:1])
class Watch(QObject):
    seen = None
    def eventFilter(self, obj, event):
        painted = event.type() == QEvent.Type.Paint and isinstance(obj, QMainWindow)
        if self.seen is None and painted:
            self.seen = [m for m in watched if m in sys.modules]
            print("LOADED", json.dumps(self.seen), file=sys.stderr, flush=True)
        return False
watch = Watch()
app.installEventFilter(watch)
from lepton_desktop.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _start(tmp_path: Path, *args: str) -> tuple[list[str], str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_DATA_HOME=str(tmp_path / "x"),
               XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_STATE_HOME=str(tmp_path / "state"))
    env |= {FIRST_PAINT_ENV: "quit", INSTANCE_ENV: f"lepton-test-{tmp_path.name}"}
    proc = subprocess.run(
        [sys.executable, "-c", _WATCH, json.dumps(HEAVY), *args],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert FIRST_PAINT_MARKER in proc.stderr
    line = next((x for x in proc.stderr.splitlines() if x.startswith("LOADED ")), None)
    assert line is not None, proc.stderr
    return list(json.loads(line.removeprefix("LOADED "))), proc.stderr


def test_the_start_page_is_painted_without_heavy_libraries(tmp_path: Path) -> None:
    loaded, _ = _start(tmp_path)
    assert loaded == []


def test_a_project_given_on_the_command_line_paints_first_too(
    tmp_path: Path, tmp_project: Path
) -> None:
    loaded, _ = _start(tmp_path, str(tmp_project))
    # The project opens on the session's DB thread (its tabs are built when it has
    # opened, which may come before the first paint); nothing waits for tuning's,
    # training's or the table reader's libraries.
    assert not {"optuna.importance", "sklearn", "scipy", "torch", "pyarrow"} & set(loaded)
