"""Trials per second with ``tune --jobs 2`` against ``--jobs 1``, through the real worker path.

Run from the repository root::

    .venv/bin/python -m bench.tune_scaling                    # 24 trials of 30 epochs
    .venv/bin/python -m bench.tune_scaling --trials 40 --epochs 60 --repeat 3

Each run is the command a user types, in a fresh process on a fresh copy of a project
holding iris: ``lepton-desktop tune P iris --arch mlp --trials N --epochs E --sampler
random --pruner none --space S --jobs K --json``. The space fixes the network (two
layers of 64, batch 16) and only varies the learning rate, so every trial does the
same CPU-bound work whatever is sampled; with ``--jobs 2`` the tune job starts one
``lepton-desktop worker trial`` process beside itself, both on one torch thread.

Two throughputs per run:

- ``trial phase``: trials / (last trial's end - first trial's start), from Optuna's own
  timestamps in the project file: the parallel part alone;
- ``end to end``: trials / the command's wall time, start-up (imports, the second
  process), the final retraining of the best trial and registering it included.

The load average is printed before and after (the machine is shared: other work
running at the same time takes cores the second process would use).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

from bench._common import REPO, machine_line, markdown_table
from lepton_desktop.core.project import Project

SPACE = {
    "lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
    "layers": 2,
    "width": 64,
    "batch_size": 16,
    "dropout": 0.0,
}


def _template(folder: Path) -> Path:
    path = folder / "template.lepton"
    with Project.create(path) as project:
        project.import_dataset(REPO / "resources" / "sample_data" / "iris.csv", "iris",
                               target="species")  # fmt: skip
    (folder / "space.json").write_text(json.dumps(SPACE))
    return path


def run_once(folder: Path, template: Path, jobs: int, args: argparse.Namespace) -> dict:
    """One ``tune`` command; its throughputs."""
    project = folder / f"jobs{jobs}-{time.monotonic_ns()}.lepton"
    shutil.copy(template, project)
    command = [
        sys.executable, "-m", "lepton_desktop", "tune", str(project), "iris", "--arch", "mlp",
        "--trials", str(args.trials), "--epochs", str(args.epochs), "--sampler", "random",
        "--pruner", "none", "--space", str(folder / "space.json"), "--jobs", str(jobs), "--json",
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(REPO))
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"tune --jobs {jobs} failed:\n{done.stderr}")
    name = json.loads(done.stdout)["study"]
    trials = optuna.load_study(study_name=name, storage=f"sqlite:///{project}").trials
    complete = [t for t in trials if t.datetime_start and t.datetime_complete]
    span = max(t.datetime_complete for t in complete) - min(t.datetime_start for t in complete)
    workers = {t.user_attrs.get("worker") for t in complete}
    return {
        "trials": len(complete),
        "phase": len(complete) / span.total_seconds(),
        "end_to_end": len(complete) / wall,
        "wall": wall,
        "processes": len(workers),
    }


def main() -> None:
    """Run both settings (interleaved when repeated) and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = Path(tempfile.mkdtemp(prefix="tune-scaling-"))
    load_before = os.getloadavg()
    try:
        template = _template(folder)
        runs: dict[int, list[dict]] = {1: [], 2: []}
        for _ in range(args.repeat):
            for jobs in runs:
                runs[jobs].append(run_once(folder, template, jobs, args))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(_table(runs, args, load_before, os.getloadavg()))


def _table(
    runs: dict[int, list[dict]],
    args: argparse.Namespace,
    before: tuple[float, float, float],
    after: tuple[float, float, float],
) -> str:
    median = {
        jobs: {key: statistics.median(r[key] for r in results) for key in results[0]}
        for jobs, results in runs.items()
    }
    base = median[1]
    rows = [
        [
            f"--jobs {jobs}", f"{m['processes']:.0f}", f"{m['trials']:.0f}", f"{m['wall']:.1f}",
            f"{m['phase']:.2f}", f"{m['phase'] / base['phase']:.2f}x",
            f"{m['end_to_end']:.2f}", f"{m['end_to_end'] / base['end_to_end']:.2f}x",
        ]
        for jobs, m in median.items()
    ]  # fmt: skip
    header = [
        "setting", "processes", "trials", "wall s", "trials/s (trial phase)", "scaling",
        "trials/s (end to end)", "scaling",
    ]  # fmt: skip
    return (
        f"{machine_line()}\n{args.trials} trials x {args.epochs} epochs (iris MLP 2x64), "
        f"median of {args.repeat} round(s); load average (1, 5, 15 min) before "
        f"{_load(before)}, after {_load(after)}\n\n{markdown_table(header, rows)}"
    )


def _load(values: tuple[float, float, float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
