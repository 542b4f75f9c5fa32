"""From launch to a painted main window, on a virtual X screen, against a bare Qt window.

Run from the repository root::

    .venv/bin/python -m bench.app_start                 # median of 5 runs each
    .venv/bin/python -m bench.app_start --repeat 3

An Xvfb server is started for the run (the X display a desktop would give; Debian's
``xvfb`` package, which ``packaging/dev.sh`` installs), and each launch runs there on
Qt's ``xcb`` platform, in a fresh process, with ``LEPTON_FIRST_PAINT=quit``: the app
writes a marker on stderr once its main window has been painted the first time, then
exits. The clock runs from starting the process to reading that line: what a user
waits between double-clicking and seeing the window. Rows, interleaved round by round:

- **anchor**: a bare PySide6 ``QMainWindow`` (import PySide6, create the application,
  show the window, first paint): the floor of any Qt app on this machine;
- ``lepton-desktop`` with no project (the start page), as ``python -m lepton_desktop``
  from this checkout;
- ``lepton-desktop demo.lepton``: a project on the command line (a project made once
  from the sample data; its tabs are built once it has opened, after the first paint);
- the frozen app (``dist/lepton-desktop/lepton-desktop``), when a build is there: its
  start page and the same project, run with no ``PYTHON*`` variable (as a desktop
  launcher starts it).

Goals (issue 14): from source <= 1.5 s, frozen <= 3 s.
"""

from __future__ import annotations

import argparse
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._common import REPO, machine_line, markdown_table

MARKER = "lepton-desktop: first paint"
ANCHOR = "bare PySide6 QMainWindow (anchor)"
GOALS = {"source": 1.5, "frozen": 3.0}
FROZEN = REPO / "dist" / "lepton-desktop" / "lepton-desktop"
TIMEOUT_S = 120.0

#: The anchor: the same marker, printed the same way, from a window with nothing in it.
BARE_WINDOW = f"""
import sys
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow

class FirstPaint(QObject):
    def eventFilter(self, watched, event):
        if event.type() == QEvent.Type.Paint:
            watched.removeEventFilter(self)
            QTimer.singleShot(0, report)
        return False

def report():
    sys.stderr.write({MARKER!r} + "\\n")
    sys.stderr.flush()
    app.quit()

app = QApplication(sys.argv)
window = QMainWindow()
window.resize(1200, 780)
probe = FirstPaint()
window.installEventFilter(probe)
window.show()
app.exec()
"""


class VirtualScreen:
    """An Xvfb server on a display it picks itself; stopped on exit."""

    def __init__(self) -> None:
        if shutil.which("Xvfb") is None:
            raise SystemExit("Xvfb not found: install Debian's xvfb (bash packaging/dev.sh does)")
        read, write = os.pipe()
        self.process = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
            pass_fds=(write,), stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(write)
        with os.fdopen(read) as pipe:
            self.display = ":" + pipe.readline().strip()

    def __enter__(self) -> VirtualScreen:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def launch_seconds(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Start ``argv``; seconds until its first-paint marker, and the CPU seconds it used.

    CPU time (user + system, all threads, until it exits right after painting) moves
    far less than wall time when the machine is busy with other work.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=env["HOME"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stderr is not None
    seen: list[str] = []
    while True:
        ready, _, _ = select.select([proc.stderr], [], [], TIMEOUT_S)
        line = proc.stderr.readline() if ready else ""
        if MARKER in line:
            painted = time.perf_counter() - started
            break
        if not line:
            proc.kill()
            raise SystemExit(f"{argv} never painted:\n{''.join(seen[-20:])}")
        seen.append(line)
    proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return painted, usage.ru_utime + usage.ru_stime


def commands(folder: Path) -> dict[str, list[str]]:
    """Label -> command line, the anchor first."""
    demo = folder / "demo.lepton"
    subprocess.run([sys.executable, "-m", "lepton_desktop", "demo", str(demo)], cwd=REPO,
                   env=dict(os.environ, PYTHONPATH=str(REPO)), check=True,
                   capture_output=True)  # fmt: skip
    found = {
        ANCHOR: [sys.executable, "-c", BARE_WINDOW],
        "lepton-desktop (start page), source": [sys.executable, "-m", "lepton_desktop"],
        "lepton-desktop demo.lepton, source": [sys.executable, "-m", "lepton_desktop", str(demo)],
    }
    if FROZEN.exists():
        found["lepton-desktop (start page), frozen"] = [str(FROZEN)]
        found["lepton-desktop demo.lepton, frozen"] = [str(FROZEN), str(demo)]
    return found


def environment(folder: Path, display: str, run: int, frozen: bool) -> dict[str, str]:
    """A fresh user each run (settings, data, logs), on the virtual screen; the source
    tree on ``PYTHONPATH`` for the source app, no ``PYTHON*`` variable for the frozen one."""
    home = folder / f"home{run}"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not (frozen and k.startswith("PYTHON"))}
    env |= {"DISPLAY": display, "QT_QPA_PLATFORM": "xcb", "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data"),
            "XDG_STATE_HOME": str(home / "state")}  # fmt: skip
    if not frozen:
        env["PYTHONPATH"] = str(REPO)
    return env | {"LEPTON_FIRST_PAINT": "quit", "LEPTON_INSTANCE": f"bench-{run}-{os.getpid()}"}


def measure(repeat: int) -> dict[str, list[tuple[float, float]]]:
    """Label -> (wall, CPU) seconds of every launch, rounds interleaved."""
    folder = Path(tempfile.mkdtemp(prefix="app-start-"))
    try:
        measured = commands(folder)
        times: dict[str, list[tuple[float, float]]] = {label: [] for label in measured}
        with VirtualScreen() as screen:
            run = 0
            for _ in range(repeat):
                for label, argv in measured.items():
                    run += 1
                    env = environment(folder, screen.display, run, label.endswith("frozen"))
                    times[label].append(launch_seconds(argv, env))
        return times
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def report(
    times: dict[str, list[tuple[float, float]]], repeat: int, before: float, after: float
) -> str:
    """The side-by-side table: median, best, ratio to the anchor, CPU time, goal."""
    anchor = statistics.median(wall for wall, _ in times[ANCHOR])
    anchor_cpu = statistics.median(cpu for _, cpu in times[ANCHOR])
    rows = []
    for label, runs in times.items():
        walls = [wall for wall, _ in runs]
        median, cpu = statistics.median(walls), statistics.median(c for _, c in runs)
        kind = "frozen" if label.endswith("frozen") else "source"
        goal = None if label == ANCHOR else GOALS[kind]
        verdict = "" if goal is None else f"<= {goal} s: {'met' if median <= goal else 'missed'}"
        rows.append([label, f"{median:.2f}", f"{min(walls):.2f}", f"{median / anchor:.2f}x",
                     f"{cpu:.2f}", f"{cpu / anchor_cpu:.2f}x", verdict])  # fmt: skip
    header = ["launch to first paint", "median s", "min s", "vs anchor", "CPU s",
              "CPU vs anchor", "goal (wall)"]  # fmt: skip
    frozen = "" if FROZEN.exists() else f"; no frozen build at {FROZEN.relative_to(REPO)}"
    return (
        f"{machine_line()}\nXvfb 1280x800, Qt xcb; median of {repeat} launches each, "
        f"interleaved; load average (1 min) before {before:.2f}, after {after:.2f}{frozen}\n\n"
        f"{markdown_table(header, rows)}"
    )


def main() -> None:
    """Launch every command round by round on a virtual screen; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="launches of each (median)")
    args = parser.parse_args()
    before = os.getloadavg()[0]
    times = measure(args.repeat)
    print(report(times, args.repeat, before, os.getloadavg()[0]))


if __name__ == "__main__":
    main()
