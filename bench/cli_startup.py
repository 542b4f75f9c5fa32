"""A short command end to end: ``train`` (one epoch) and ``export`` against ``import torch``.

Run from the repository root::

    .venv/bin/python -m bench.cli_startup                     # median of 5 runs each
    .venv/bin/python -m bench.cli_startup --repeat 3
    .venv/bin/python -m bench.cli_startup --tree /tmp/old --tree .   # before / after

Each run is a command a user types, in a fresh process, timed from its start to its
exit (the clock a user's script or shell waits on), on a project made once in a
temporary folder: a 3,500-row table generated from ``resources/sample_data/iris.csv``
(each row a sample row with seeded Gaussian jitter on its four measurements):

- ``python -c "import torch"`` (the anchor): the floor of any command that trains
  or exports, since both need torch;
- ``lepton-desktop train P t:1 --arch mlp --epochs 1 --json``: queue the run, load
  the data, one epoch, evaluate, register the model, print the result;
- ``lepton-desktop export P t-mlp --format F --out NEW --json`` for ``torchscript``,
  ``onnx`` and ``bundle`` (weights, ONNX and model card, read back and checked).

Commands run as ``python -m lepton_desktop`` (the console script's own entry,
``cli.run``) of ``--tree`` (default: this checkout), so the table measures that tree's
code whatever is installed; with several ``--tree`` (an older commit's files, e.g. from
``git archive``, and this one) each gets its own project and its rows, all in the same
rounds. Rounds interleave the commands; the table shows medians,
the ratio to the anchor's median, "after result" (the time between the result line on
stdout and the process's exit), and the CPU time (user + system) of the process, which
a busy shared machine moves far less than wall time. Goals (issue 9): train <= 3 s, export <= 2 s.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from bench._common import REPO, machine_line, markdown_table

ROWS = 3_500
ANCHOR = "python -c 'import torch'"
GOALS = {"train": 3.0, "export": 2.0}
EXPORT_FORMATS = ("torchscript", "onnx", "bundle")


def make_table(path: Path, rows: int = ROWS, seed: int = 0) -> Path:
    """``rows`` iris-like rows: sample rows cycled, measurements jittered (sd 0.1 cm)."""
    with (REPO / "resources" / "sample_data" / "iris.csv").open(encoding="utf-8") as fh:
        source = list(csv.DictReader(fh))
    names = list(source[0])
    rng = np.random.default_rng(seed)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(names)
        for i in range(rows):
            row = source[i % len(source)]
            writer.writerow(
                [row[n] if n == "species" else f"{float(row[n]) + rng.normal(0, 0.1):.3f}"
                 for n in names]
            )  # fmt: skip
    return path


class Run(NamedTuple):
    """One run of a command: wall seconds to its exit, after its result line, CPU."""

    seconds: float
    after_result: float
    cpu_seconds: float


class Commands:
    """The command lines of one tree, on one project, in one scratch folder."""

    def __init__(self, tree: Path, folder: Path, name: str = "") -> None:
        self.tree, self.folder, self.name = tree, folder, name
        folder.mkdir(parents=True, exist_ok=True)
        self.project = folder / "bench.lepton"
        self.env = dict(os.environ, PYTHONPATH=str(tree))
        self._outputs = 0

    def lepton(self, *args: object) -> list[str]:
        """``lepton-desktop ARGS`` as the console script runs it, from ``tree``."""
        return [sys.executable, "-m", "lepton_desktop", *map(str, args)]

    def prepare(self) -> None:
        """The project: the generated table imported, one model trained (not timed)."""
        table = make_table(self.folder / "table.csv")
        steps = [
            ("new", self.project),
            ("import", self.project, table, "--name", "t", "--target", "species"),
            ("train", self.project, "t:1", "--arch", "mlp", "--epochs", "1"),
        ]
        for step in steps:
            subprocess.run(
                self.lepton(*step), env=self.env, cwd=self.tree, check=True, capture_output=True
            )

    def measured(self) -> dict[str, list[str]]:
        """Label -> command line (labels end with the tree's name, if it has one)."""
        suffix = f" [{self.name}]" if self.name else ""
        commands = {
            f"train (1 epoch){suffix}": self.lepton(
                "train", self.project, "t:1", "--arch", "mlp", "--epochs", "1", "--json"
            ),
        }
        for format in EXPORT_FORMATS:
            commands[f"export {format}{suffix}"] = self.lepton(
                "export", self.project, "t-mlp", "--format", format, "--out",
                self.folder / f"out-{format}-{{n}}", "--json",
            )  # fmt: skip
        return commands

    def time(self, label: str, argv: list[str]) -> Run:
        """Run a command once; its times (CPU: user + system of the process, all threads)."""
        self._outputs += 1
        argv = [a.replace("{n}", str(self._outputs)) for a in argv]
        with tempfile.TemporaryFile() as errors:
            started = time.perf_counter()
            proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=errors, env=self.env, cwd=self.tree
            )
            assert proc.stdout is not None
            line = proc.stdout.readline()
            answered = time.perf_counter()
            rest = proc.stdout.read()
            _, status, usage = os.wait4(proc.pid, 0)
            ended = time.perf_counter()
            code = proc.returncode = os.waitstatus_to_exitcode(status)
            if code != 0:
                errors.seek(0)
                raise SystemExit(f"{label} failed ({code}):\n{errors.read().decode()[-3000:]}")
        _check_result(label, line + rest)
        return Run(ended - started, ended - answered, usage.ru_utime + usage.ru_stime)


def _check_result(label: str, out: bytes) -> None:
    if label == ANCHOR:
        return
    result = json.loads(out)  # exactly one JSON object
    if label.startswith("train"):
        assert result["status"] == "finished" and result["epochs"] == 1, result
    else:
        assert Path(result["path"]).exists(), result


def main() -> None:
    """Prepare the project, run the commands round by round, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command (median)")
    parser.add_argument(
        "--tree", type=Path, action="append",
        help="checkout whose code is timed (default: this one); repeat to compare trees",
    )  # fmt: skip
    args = parser.parse_args()
    args.tree = [t.resolve() for t in args.tree or [REPO]]
    load_before = os.getloadavg()
    times = measure(args.tree, args.repeat)
    print(_report(times, args, load_before, os.getloadavg()))


def measure(trees: list[Path], repeat: int) -> dict[str, list[Run]]:
    """Label -> every run of that command, rounds interleaved."""
    folder = Path(tempfile.mkdtemp(prefix="cli-startup-"))
    try:
        named = len(trees) > 1
        each = [Commands(t, folder / str(i), _name(t) if named else "")
                for i, t in enumerate(trees)]  # fmt: skip
        measured: dict[str, tuple[Commands, list[str]]] = {
            ANCHOR: (each[0], [sys.executable, "-c", "import torch"])
        }
        for commands in each:
            commands.prepare()
            measured |= {label: (commands, argv) for label, argv in commands.measured().items()}
        times: dict[str, list[Run]] = {label: [] for label in measured}
        for _ in range(repeat):
            for label, (commands, argv) in measured.items():
                times[label].append(commands.time(label, argv))
        return times
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _report(
    times: dict[str, list[Run]],
    args: argparse.Namespace,
    before: tuple[float, float, float],
    after: tuple[float, float, float],
) -> str:
    anchor = statistics.median(r.seconds for r in times[ANCHOR])
    anchor_cpu = statistics.median(r.cpu_seconds for r in times[ANCHOR])
    rows = []
    for label, runs in times.items():
        median = statistics.median(r.seconds for r in runs)
        cpu = statistics.median(r.cpu_seconds for r in runs)
        tail = statistics.median(r.after_result for r in runs)
        goal = GOALS.get(label.split()[0])
        rows.append([
            label, f"{median:.2f}", f"{min(r.seconds for r in runs):.2f}",
            "" if label == ANCHOR else f"{tail:.2f}", f"{median / anchor:.2f}x",
            f"{cpu:.2f}", f"{cpu / anchor_cpu:.2f}x",
            f"<= {goal:.0f} s: {'met' if median <= goal else 'missed'}" if goal else "",
        ])  # fmt: skip
    header = ["command", "median s", "min s", "after result s", "vs import torch",
              "CPU s", "CPU vs import torch", "goal (wall)"]  # fmt: skip
    return (
        f"{machine_line()}\ncode of {'; '.join(map(_tree, args.tree))}\n{ROWS:,}-row table; "
        f"median of {args.repeat} run(s) each, interleaved; load average (1, 5, 15 min) before "
        f"{_load(before)}, after {_load(after)}\n\n{markdown_table(header, rows)}"
    )


def _tree(tree: Path) -> str:
    done = subprocess.run(["git", "-C", str(tree), "log", "-1", "--format=%h %s"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    return f"{tree} ({done.stdout.strip()[:60] or 'not a git checkout'})"


def _name(tree: Path) -> str:
    """A short name for a tree's rows: its commit, else its folder's name."""
    done = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    return done.stdout.strip() if done.returncode == 0 else tree.name


def _load(values: tuple[float, float, float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
