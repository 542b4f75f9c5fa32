"""What a study optimizes: a validation metric (direction inferred), or several.

A single objective is one validation metric: ``f1``, ``accuracy``, ``precision``,
``recall`` or ``loss`` for classification; ``mse``, ``rmse``, ``mae``, ``r2`` or
``loss`` for regression and forecasting. A multi-objective study adds ``params``
(trainable parameters) or ``latency`` (milliseconds to predict one row) as further
objectives, both minimized; Optuna then keeps a Pareto front instead of one best
trial, and nothing is pruned (Optuna cannot prune multi-objective trials).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lepton_desktop.core.datasets.splits import is_classification
from lepton_desktop.core.entities import DatasetVersion
from lepton_desktop.core.errors import InvalidOptionError
from lepton_desktop.core.store import datasets as dataset_store

if TYPE_CHECKING:
    import sqlite3

METRICS = {
    "classification": ("f1", "accuracy", "precision", "recall", "loss"),
    "regression": ("mse", "rmse", "mae", "r2", "loss"),
    "forecasting": ("mse", "rmse", "mae", "r2", "loss"),
}
DEFAULT_METRIC = {"classification": "f1", "regression": "mse", "forecasting": "mse"}
#: Objectives that are not a validation metric: only after one (multi-objective).
SECONDARY = ("params", "latency")
MAXIMIZED = frozenset({"f1", "accuracy", "precision", "recall", "r2"})


def canonical(name: str) -> str:
    """``val_f1`` and ``F1`` both mean ``f1``."""
    name = name.strip().lower()
    return name[4:] if name.startswith("val_") else name


def direction(objective: str) -> str:
    """``maximize`` for scores, ``minimize`` for losses, errors, size and latency."""
    return "maximize" if objective in MAXIMIZED else "minimize"


def resolve(
    task: str, metric: str | None, objectives: list[str] | None
) -> tuple[list[str], list[str]]:
    """The study's objectives and their directions.

    Args:
        task: classification, regression or forecasting.
        metric: the validation metric (default: f1, or mse for numbers).
        objectives: several objectives, the first a validation metric.

    Raises:
        InvalidOptionError: an unknown metric for the task, a repeated objective,
            ``params``/``latency`` first, or ``--metric`` contradicting ``--objectives``.
    """
    chosen = [canonical(o) for o in objectives] if objectives else []
    if metric is not None and chosen and canonical(metric) != chosen[0]:
        raise InvalidOptionError(
            f"--metric {metric} contradicts --objectives {','.join(objectives or [])}: "
            "the first objective is the metric; give one of the two"
        )
    if not chosen:
        chosen = [canonical(metric) if metric else DEFAULT_METRIC[task]]
    allowed = METRICS[task]
    if chosen[0] not in allowed:
        extra = " (params and latency only after a metric)" if chosen[0] in SECONDARY else ""
        raise InvalidOptionError(
            f"--metric {chosen[0]!r}: a {task} study optimizes one of {', '.join(allowed)}{extra}"
        )
    for name in chosen[1:]:
        if name not in allowed + SECONDARY:
            raise InvalidOptionError(
                f"--objectives: unknown objective {name!r} (choose from "
                f"{', '.join(allowed + SECONDARY)})"
            )
    if len(set(chosen)) != len(chosen):
        raise InvalidOptionError(f"--objectives {','.join(chosen)}: an objective is repeated")
    return chosen, [direction(o) for o in chosen]


def detect_task(conn: sqlite3.Connection, version: DatasetVersion) -> str:
    """The task training will infer for ``version`` (read from its target column only).

    A study trains on the dataset's own target with the task inferred (its options
    hold no ``task`` or ``target``).
    """
    if version.kind == "timeseries":
        return "forecasting"
    if version.kind == "images":
        return "classification"
    name = version.target
    if name is None:
        raise InvalidOptionError(f"{version.ref} has no target column; import it with --target")
    column = version.column(name)
    if column.dtype != "numeric":
        return "classification"
    counts = dataset_store.label_counts(conn, version, column)
    values = np.repeat(
        np.array([float(v) for v in counts if v != "None"], dtype=np.float64),
        [n for v, n in counts.items() if v != "None"],
    )
    return "classification" if is_classification(values) else "regression"
