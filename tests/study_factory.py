"""Optuna studies in project files, for the tuning tests and ``bench/study_plots.py``.

Trials are generated with numpy from a seed: six hyperparameters (log floats, ints,
categoricals, one conditional), a learning curve per trial reported as intermediate
values, and a share of pruned, failed and running trials. Two ways to store them:

- :func:`add_with_optuna`: through Optuna's public API (``study.add_trials`` with
  ``optuna.trial.create_trial``), about 12 ms a trial on a small machine;
- :func:`add_with_sql`: the same rows written straight into Optuna's tables in one
  transaction, exactly as Optuna's RDB storage writes them, for 10,000-trial studies
  in seconds. A test (``test_study_reading.py``) proves Optuna reads them back equal.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)
from optuna.trial import TrialState, create_trial

DISTRIBUTIONS: dict[str, BaseDistribution] = {
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "hidden": IntDistribution(16, 512, log=True),
    "layers": IntDistribution(1, 4),
    "dropout": FloatDistribution(0.0, 0.5),  # only when layers > 1 (conditional)
    "activation": CategoricalDistribution(["relu", "tanh", "gelu"]),
    "batch_size": CategoricalDistribution([32, 64, 128, 256]),
}
_T0 = dt.datetime(2026, 1, 1, 12, 0, 0)


def storage_url(path: Path) -> str:
    """Optuna's URL for a project file (with the busy timeout the project uses)."""
    return f"sqlite:///{path}?timeout=30"


def create_study(
    path: Path, name: str = "study", directions: tuple[str, ...] = ("minimize",)
) -> optuna.Study:
    """A new, empty Optuna study inside an existing project file."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        storage=storage_url(path), study_name=name, directions=list(directions)
    )


@dataclasses.dataclass
class TrialSpec:
    """One generated trial."""

    state: TrialState
    params: dict[str, Any]
    values: list[float] | None
    intermediate: dict[int, float]
    run_id: int | None


def generate(
    n: int,
    *,
    epochs: int = 10,
    seed: int = 0,
    pruned: float = 0.2,
    failed: float = 0.02,
    running: int = 0,
    objectives: int = 1,
) -> list[TrialSpec]:
    """``n`` trials (the last ``running`` of them still running), reproducible by seed."""
    rng = np.random.default_rng(seed)
    specs = []
    for i in range(n):
        params = _params(rng)
        final = _objective(params, rng)
        curve = final + (1.5 - final) * np.exp(-np.arange(epochs) / 3.0)
        curve = curve + rng.normal(0, 0.01, epochs)
        state, stop = _state(rng, i, n, epochs, pruned, failed, running)
        intermediate = {e: float(curve[e]) for e in range(stop)}
        values = None
        if state == TrialState.COMPLETE:
            values = [float(curve[-1])]
        elif state == TrialState.PRUNED and intermediate:
            values = [intermediate[stop - 1]]  # Optuna keeps the last report as the value
        if values is not None and objectives == 2:
            values.append(float(np.log10(params["hidden"] * params["layers"])))
        run_id = i + 1 if state != TrialState.FAIL else None
        specs.append(TrialSpec(state, params, values, intermediate, run_id))
    return specs


def _params(rng: np.random.Generator) -> dict[str, Any]:
    layers = int(rng.integers(1, 5))
    params: dict[str, Any] = {
        "lr": float(10 ** rng.uniform(-5, -1)),
        "hidden": int(np.clip(round(2 ** rng.uniform(4, 9)), 16, 512)),
        "layers": layers,
    }
    if layers > 1:
        params["dropout"] = float(rng.uniform(0, 0.5))
    params["activation"] = ["relu", "tanh", "gelu"][int(rng.integers(3))]
    params["batch_size"] = [32, 64, 128, 256][int(rng.integers(4))]
    return params


def _objective(params: dict[str, Any], rng: np.random.Generator) -> float:
    lr_term = 0.08 * (np.log10(params["lr"]) + 3) ** 2
    drop_term = 0.6 * (params.get("dropout", 0.2) - 0.2) ** 2
    act_term = {"relu": 0.0, "tanh": 0.05, "gelu": 0.02}[params["activation"]]
    return float(
        0.05
        + lr_term
        + drop_term
        + 0.03 * abs(params["layers"] - 2)
        + act_term
        + rng.normal(0, 0.02)
    )


def _state(
    rng: np.random.Generator,
    i: int,
    n: int,
    epochs: int,
    pruned: float,
    failed: float,
    running: int,
) -> tuple[TrialState, int]:
    if i >= n - running:
        return TrialState.RUNNING, int(rng.integers(0, epochs))
    draw = rng.random()
    if draw < failed:
        return TrialState.FAIL, 0
    if draw < failed + pruned:
        return TrialState.PRUNED, int(rng.integers(1, max(2, epochs - 1)))
    return TrialState.COMPLETE, epochs


def add_with_optuna(study: optuna.Study, specs: list[TrialSpec]) -> None:
    """Store trials through Optuna's public API."""
    trials = []
    for spec in specs:
        distributions = {k: DISTRIBUTIONS[k] for k in spec.params}
        trials.append(
            create_trial(
                state=spec.state,
                params=spec.params,
                distributions=distributions,
                values=spec.values,
                intermediate_values=spec.intermediate,
                user_attrs={} if spec.run_id is None else {"run_id": spec.run_id},
            )
        )
    study.add_trials(trials)


def add_with_sql(path: Path, study_name: str, specs: list[TrialSpec]) -> None:
    """Store trials with SQL into Optuna's tables, in one transaction (fast)."""
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        (study_id,) = conn.execute(
            "SELECT study_id FROM studies WHERE study_name = ?", (study_name,)
        ).fetchone()
        first_id, number = conn.execute(
            "SELECT COALESCE(MAX(trial_id), 0) + 1, (SELECT COUNT(*) FROM trials "
            "WHERE study_id = ?) FROM trials",
            (study_id,),
        ).fetchone()
        _insert(conn, study_id, first_id, number, specs)
        conn.execute("COMMIT")
    finally:
        conn.close()


def _insert(
    conn: sqlite3.Connection, study_id: int, first_id: int, number: int, specs: list[TrialSpec]
) -> None:
    dist_json = {k: distribution_to_json(d) for k, d in DISTRIBUTIONS.items()}
    trials, params, values, inter, attrs = [], [], [], [], []
    for offset, spec in enumerate(specs):
        trial_id = first_id + offset
        start = _T0 + dt.timedelta(seconds=number + offset)
        done = None if spec.state == TrialState.RUNNING else start + dt.timedelta(seconds=0.8)
        trials.append(
            (trial_id, number + offset, study_id, spec.state.name, _fmt(start), _fmt(done))
        )
        for name, value in spec.params.items():
            internal = DISTRIBUTIONS[name].to_internal_repr(value)
            params.append((trial_id, name, float(internal), dist_json[name]))
        values += [(trial_id, k, v, "FINITE") for k, v in enumerate(spec.values or [])]
        inter += [(trial_id, s, v, "FINITE") for s, v in spec.intermediate.items()]
        if spec.run_id is not None:
            attrs.append((trial_id, "run_id", json.dumps(spec.run_id)))
    conn.executemany(
        "INSERT INTO trials (trial_id, number, study_id, state, datetime_start, "
        "datetime_complete) VALUES (?, ?, ?, ?, ?, ?)",
        trials,
    )
    conn.executemany(
        "INSERT INTO trial_params (trial_id, param_name, param_value, "
        "distribution_json) VALUES (?, ?, ?, ?)",
        params,
    )
    conn.executemany(
        "INSERT INTO trial_values (trial_id, objective, value, value_type) VALUES (?, ?, ?, ?)",
        values,
    )
    conn.executemany(
        "INSERT INTO trial_intermediate_values (trial_id, step, "
        "intermediate_value, intermediate_value_type) VALUES (?, ?, ?, ?)",
        inter,
    )
    conn.executemany(
        "INSERT INTO trial_user_attributes (trial_id, key, value_json) VALUES (?, ?, ?)", attrs
    )


def _fmt(moment: dt.datetime | None) -> str | None:
    # SQLAlchemy's SQLite DateTime format, as Optuna's rows hold it.
    return None if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def make_study_file(
    path: Path, n: int, *, name: str = "study", objectives: int = 1, **options: Any
) -> Path:
    """A new project at ``path`` holding one study of ``n`` generated trials (SQL-written)."""
    from lepton_desktop.core.project import Project

    Project.create(path).close()
    directions = ("minimize",) * objectives
    create_study(path, name, directions)
    add_with_sql(path, name, generate(n, objectives=objectives, **options))
    return path
