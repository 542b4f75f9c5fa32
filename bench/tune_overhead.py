"""Per-trial overhead of Lepton's study storage against Optuna's own storages.

Run from the repository root::

    .venv/bin/python -m bench.tune_overhead                  # 300 trials each, one round
    .venv/bin/python -m bench.tune_overhead --trials 500 --repeat 3 --sampler tpe

Every method runs the same trivial objective (a 2-D quadratic: no training, so what
is left is the cost of sampling and storing a trial) for ``--trials`` trials with the
same sampler (``--sampler``, default random: its own cost is nil, so storage dominates):

- ``optuna in-memory`` (the anchor): ``optuna.create_study()`` and ``study.optimize``.
- ``optuna sqlite file``: the same into a fresh ``sqlite:///file.db``.
- ``optuna on the project file``: ``study.optimize`` into a Lepton project file's own
  Optuna tables, with the storage Lepton opens (WAL file, busy timeout, per-trial
  heartbeat thread and retry callback), created through ``project.tuning.create``.
- ``lepton TrialLoop``: what a ``tune`` worker runs, on that study: before each trial
  it counts the study's trials (failing stale ones), reads the best so far for the
  progress bar, and reports progress; then one ``optimize`` call per trial. Only the
  objective is swapped for the quadratic.

Each method gets a fresh file; set-up (creating the project and the study) is outside
the clock. Trials are counted in the storage afterwards. With ``--repeat`` the rounds
interleave the methods and the table shows the median of each.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from bench._common import REPO, Stopwatch, machine_line, markdown_table
from lepton_desktop.core.progress import NullReporter
from lepton_desktop.core.project import Project
from lepton_desktop.core.tuning import storage as storages
from lepton_desktop.core.tuning.runner import TrialLoop

SPACE = {"lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}}


def quadratic(trial: optuna.Trial) -> float:
    """The trivial objective: a bowl with its minimum at (2, -1)."""
    x = trial.suggest_float("x", -10, 10)
    y = trial.suggest_float("y", -10, 10)
    return (x - 2) ** 2 + (y + 1) ** 2


def _sampler(name: str) -> optuna.samplers.BaseSampler:
    return storages.make_sampler(name, {}, 0, parallel=False)


def optuna_in_memory(folder: Path, trials: int, sampler: str) -> tuple[float, float, int]:
    study = optuna.create_study(sampler=_sampler(sampler))
    with Stopwatch() as clock:
        study.optimize(quadratic, n_trials=trials)
    return clock.seconds, clock.cpu_seconds, len(study.trials)


def optuna_sqlite(folder: Path, trials: int, sampler: str) -> tuple[float, float, int]:
    url = f"sqlite:///{folder / 'plain.db'}"
    study = optuna.create_study(storage=url, sampler=_sampler(sampler))
    with Stopwatch() as clock:
        study.optimize(quadratic, n_trials=trials)
    return (
        clock.seconds,
        clock.cpu_seconds,
        len(optuna.load_study(study_name=study.study_name, storage=url).trials),
    )


def _project_study(folder: Path, trials: int, sampler: str) -> tuple[Project, Any]:
    project = Project.create(folder / "bench.lepton")
    project.import_dataset(REPO / "resources" / "sample_data" / "iris.csv", "iris",
                           target="species")  # fmt: skip
    study = project.tuning.create(
        "iris", "mlp", space=SPACE, sampler=sampler, pruner="none", n_trials=trials
    )
    return project, study


def optuna_project(folder: Path, trials: int, sampler: str) -> tuple[float, float, int]:
    project, study = _project_study(folder, trials, sampler)
    with project:
        storage = storages.open_storage(None, project.path)
        with storages.quiet():
            optuna_study = optuna.load_study(
                study_name=study.name, storage=storage, sampler=_sampler(sampler)
            )
            with Stopwatch() as clock:
                optuna_study.optimize(quadratic, n_trials=trials)
        return clock.seconds, clock.cpu_seconds, _count(project, study.name)


def lepton_loop(folder: Path, trials: int, sampler: str) -> tuple[float, float, int]:
    project, study = _project_study(folder, trials, sampler)
    with project:
        loop = TrialLoop(project, study, trials, NullReporter())
        loop.objective = quadratic  # type: ignore[assignment]
        with Stopwatch() as clock:
            loop.run()
        return clock.seconds, clock.cpu_seconds, _count(project, study.name)


def _count(project: Project, name: str) -> int:
    return sum(project.tuning.trial_counts(name).values())


METHODS: dict[str, Callable[[Path, int, str], tuple[float, float, int]]] = {
    "optuna in-memory": optuna_in_memory,
    "optuna sqlite file": optuna_sqlite,
    "optuna on the project file": optuna_project,
    "lepton TrialLoop": lepton_loop,
}


def main() -> None:
    """Measure every method and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--sampler", default="random", choices=("random", "tpe"))
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    results: dict[str, list[tuple[float, float, int]]] = {m: [] for m in METHODS}
    for _ in range(args.repeat):
        for name, method in METHODS.items():
            folder = Path(tempfile.mkdtemp(prefix="tune-overhead-"))
            try:
                results[name].append(method(folder, args.trials, args.sampler))
            finally:
                shutil.rmtree(folder, ignore_errors=True)
    print(_table(results, args))


def _table(results: dict[str, list[tuple[float, float, int]]], args: argparse.Namespace) -> str:
    per_trial = {
        name: statistics.median(wall / max(n, 1) for wall, _, n in runs) * 1000
        for name, runs in results.items()
    }
    memory, sqlite = per_trial["optuna in-memory"], per_trial["optuna sqlite file"]
    rows = []
    for name, runs in results.items():
        wall, cpu, n = (statistics.median(r[i] for r in runs) for i in range(3))
        rows.append([
            name, f"{int(n)}", f"{wall:.2f}", f"{cpu:.2f}", f"{per_trial[name]:.2f}",
            f"{per_trial[name] / memory:.1f}x", f"{per_trial[name] / sqlite:.2f}x",
        ])  # fmt: skip
    header = ["method", "trials", "wall s", "cpu s", "ms/trial", "vs in-memory", "vs sqlite file"]
    return (
        f"{machine_line()}\n{args.trials} trials, sampler {args.sampler}, "
        f"median of {args.repeat} round(s)\n\n{markdown_table(header, rows)}"
    )


if __name__ == "__main__":
    main()
