"""Partial dependence and ICE lines of a tabular model, for its top columns.

For one numeric column, each test row is predicted again with that column set to each
value of a grid (the column's 5th to 95th percentile on the test split, or its distinct
values when there are fewer): one row's predictions along the grid is its ICE line
(individual conditional expectation), their mean the partial dependence. This is
scikit-learn's ``partial_dependence(kind="both", method="brute")`` on the network's
own inputs (the test suite checks we agree with it on a wrapped model); all grid
points of a column go through the network in one batch.

A categorical column one-hot encoded by training is varied as a whole: for each of its
categories, every test row gets that category's one-hot input on and the group's
others off (scikit-learn's ``partial_dependence`` on the raw column listed in
``categorical_features``, through the same encoding: a test checks we agree), giving
one average per category (drawn as bars) and ICE values per category.

Values are shown in the units of the dataset version's columns: the grid is mapped
back through the standard scaling training fitted; a categorical grid is its
categories. Classification gives class
probabilities (binary: the second class only, as scikit-learn does); regression the
target in its own units.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lepton_desktop.core.training.data import TrainData
from lepton_desktop.core.training.evaluate import softmax

#: Columns drawn (the most important numeric ones).
TOP_COLUMNS = 4
GRID_POINTS = 20
PERCENTILES = (0.05, 0.95)
#: ICE lines kept per column (a seeded sample of the test rows).
ICE_LINES = 30
#: Test rows the average is taken over (a seeded sample beyond).
MAX_ROWS = 1000
#: Stored precision of the curves.
SIGNIFICANT_DIGITS = 5
#: Classes whose curves are kept (the first ones beyond).
MAX_CLASSES = 10
#: Categories of one column varied (those of the most training rows beyond): the batch
#: holds categories x rows x inputs values.
MAX_CATEGORIES = 20


def grid(values: np.ndarray, points: int = GRID_POINTS) -> np.ndarray:
    """scikit-learn's grid for one column: its distinct values when fewer than
    ``points``, else ``points`` evenly spaced values between the percentiles."""
    distinct = np.unique(values)
    if len(distinct) < points:
        return distinct
    low, high = _mquantiles(values, PERCENTILES)
    if np.isclose(low, high):
        raise ValueError("the percentiles are too close to each other")
    return np.linspace(low, high, num=points, endpoint=True)


def _mquantiles(values: np.ndarray, probs: tuple[float, ...]) -> np.ndarray:
    """scipy.stats.mstats.mquantiles with its defaults (alphap = betap = 0.4), which
    scikit-learn's grid uses; written out so training never imports scipy.stats (about
    a second on a cold start). A test checks it against scipy."""
    data = np.sort(np.asarray(values, dtype=float).ravel())
    n, p = len(data), np.asarray(probs, dtype=float)
    aleph = n * p + 0.4 + p * (1.0 - 0.4 - 0.4)
    k = np.floor(np.clip(aleph, 1, n - 1)).astype(int)
    gamma = np.clip(aleph - k, 0.0, 1.0)
    return (1.0 - gamma) * data[k - 1] + gamma * data[k]


def column_dependence(
    x: np.ndarray, index: int, predict: Callable[[np.ndarray], np.ndarray], values: np.ndarray
) -> np.ndarray:
    """Predictions ``[rows, grid, outputs]`` with input ``index`` set to each grid value."""
    n, points = len(x), len(values)
    batch = np.repeat(x[None, :, :], points, axis=0)  # [grid, rows, features]
    batch[:, :, index] = values[:, None]
    out = predict(batch.reshape(points * n, -1).astype(np.float32))
    return out.reshape(points, n, -1).transpose(1, 0, 2)


def outputs(data: TrainData, raw: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Model outputs as shown: probabilities (binary: the positive class) or the target
    in its units; with the name of each output kept."""
    if data.task == "classification":
        classes = data.classes or []
        proba = softmax(raw.reshape(-1, raw.shape[-1])).reshape(raw.shape)
        keep = [1] if len(classes) == 2 else list(range(min(len(classes), MAX_CLASSES)))
        return proba[..., keep], [classes[k] for k in keep]
    return raw[..., :1] * data.target_std + data.target_mean, [data.target]


def partial_dependence(
    data: TrainData,
    predict: Callable[[np.ndarray], np.ndarray],
    ranked: list[str],
    seed: int = 0,
) -> dict[str, Any]:
    """PD and ICE on the test split for the first :data:`TOP_COLUMNS` numeric columns of
    ``ranked`` (most important first).

    Returns:
        ``{outputs: [names], kind, columns: [{column, grid, average: [output][grid],
        ice: [output][line][grid]}]}`` (grid in the column's units).
    """
    x = data.x["test"]
    rng = np.random.default_rng(seed)
    if len(x) > MAX_ROWS:
        x = x[np.sort(rng.choice(len(x), MAX_ROWS, replace=False))]
    lines = np.sort(rng.choice(len(x), min(ICE_LINES, len(x)), replace=False))
    scale = _scaling(data)
    columns: list[dict[str, Any]] = []
    names: list[str] = []
    varied = [c for c in ranked if _numeric(data, c) or _categorical(data, c)]
    for column in varied[:TOP_COLUMNS]:
        if _categorical(data, column):
            categories, switches = one_hot_switches(data, column)
            raw = group_dependence(x, data.groups[column], predict, switches)
            shown_grid: list[Any] = categories
        else:
            index = data.groups[column][0]
            try:
                values = grid(x[:, index])
            except ValueError:
                continue  # a constant column: nothing to vary
            raw = column_dependence(x, index, predict, values)
            mean, std = scale.get(column, (0.0, 1.0))
            shown_grid = rounded(values * std + mean)
        shown, names = outputs(data, raw)
        entry: dict[str, Any] = {"column": column, "grid": shown_grid,
                                 "average": rounded(shown.mean(axis=0).T),
                                 "ice": rounded(shown[lines].transpose(2, 0, 1))}  # fmt: skip
        if _categorical(data, column):
            entry["categorical"] = True
        columns.append(entry)
    kind = "probability" if data.task == "classification" else "prediction"
    return {"outputs": names, "kind": kind, "rows": len(x), "columns": columns}


def one_hot_switches(data: TrainData, column: str) -> tuple[list[str], np.ndarray]:
    """The categories of one-hot ``column`` varied (at most :data:`MAX_CATEGORIES`, those
    of the most training rows) and, per category, the group's inputs set to it:
    ``[categories, group inputs]``, its own input on and the others off.

    "On" and "off" are each input's largest and smallest training value: 1 and 0, or
    their images when a later step scaled the one-hot inputs.
    """
    indices = data.groups[column]
    train = data.x["train"][:, indices]
    on, off = train.max(axis=0), train.min(axis=0)
    rows_on = (train > (on + off) / 2).sum(axis=0)
    keep = sorted(np.argsort(-rows_on, kind="stable")[:MAX_CATEGORIES])
    prefix = f"{column}="
    categories = [data.feature_names[indices[k]].removeprefix(prefix) for k in keep]
    switches = np.repeat(off[None, :], len(keep), axis=0)
    for row, k in enumerate(keep):
        switches[row, k] = on[k]
    return categories, switches


def group_dependence(
    x: np.ndarray,
    indices: list[int],
    predict: Callable[[np.ndarray], np.ndarray],
    switches: np.ndarray,
) -> np.ndarray:
    """Predictions ``[rows, categories, outputs]`` with the inputs ``indices`` set to each
    row of ``switches`` (one category on)."""
    n, points = len(x), len(switches)
    batch = np.repeat(x[None, :, :], points, axis=0)  # [categories, rows, features]
    batch[:, :, indices] = switches[:, None, :]
    out = predict(batch.reshape(points * n, -1).astype(np.float32))
    return out.reshape(points, n, -1).transpose(1, 0, 2)


def rounded(values: np.ndarray, digits: int = SIGNIFICANT_DIGITS) -> list[Any]:
    """Nested lists of ``values`` to ``digits`` significant digits (the JSON stays small:
    a run's evaluation is read on every poll of the runs table)."""
    flat = [float(f"{v:.{digits}g}") for v in np.asarray(values, dtype=np.float64).ravel()]
    return np.array(flat).reshape(np.shape(values)).tolist()


def _numeric(data: TrainData, column: str) -> bool:
    # A one-hot group has several inputs or a name "column=value": not a numeric axis.
    indices = data.groups.get(column, [])
    return len(indices) == 1 and data.feature_names[indices[0]] == column


def _categorical(data: TrainData, column: str) -> bool:
    # The inputs training's one-hot made of one source column: "column=category" each.
    indices = data.groups.get(column, [])
    prefix = f"{column}="
    return bool(indices) and all(data.feature_names[i].startswith(prefix) for i in indices)


def _scaling(data: TrainData) -> dict[str, tuple[float, float]]:
    # Training's own standard scaling (the last scale step of the pipeline) undone, so a
    # grid reads in the units of the dataset version the user picked.
    step = next((s for s in reversed(data.pipeline) if s.get("step") == "scale"), None)
    if step is None or step.get("method") != "standard":
        return {}
    return {
        name: (float(p.get("mean", 0.0)), float(p.get("std") or 1.0))
        for name, p in step["columns"].items()
    }
