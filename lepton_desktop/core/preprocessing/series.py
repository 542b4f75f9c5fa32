"""A time series to model inputs: scale it, cut it into windows (one implementation).

Training fits a ``window`` step on the train part of the series and cuts every window
with :func:`windows`; serving scales the last ``window`` values a client sends with
:func:`encode_window` and the stored step.

``{"step": "window", "column": c, "window": w, "horizon": h, "mean": m, "std": s}``
    A forecast reads the last ``w`` values of ``c``, standardised with the train part's
    mean and spread, to predict the value ``h`` steps after the last one.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def fit_window_step(
    series: np.ndarray, train: np.ndarray, column: str, window: int, horizon: int
) -> dict[str, Any]:
    """The ``window`` step of ``series`` (float64), fitted on the ``train`` mask."""
    mean, std = float(series[train].mean()), float(series[train].std()) or 1.0
    return {"step": "window", "column": column, "window": int(window),
            "horizon": int(horizon), "mean": mean, "std": std}  # fmt: skip


def scale(values: np.ndarray, step: dict[str, Any]) -> np.ndarray:
    """Values (float64) standardised with the step's mean and spread, as float32."""
    return ((values - step["mean"]) / step["std"]).astype(np.float32)


def window_ends(length: int, step: dict[str, Any]) -> np.ndarray:
    """Index of the target of every complete window of a series of ``length`` values."""
    return np.arange(int(step["window"]) + int(step["horizon"]) - 1, length)


def windows(scaled: np.ndarray, ends: np.ndarray, step: dict[str, Any]) -> np.ndarray:
    """The input windows ``(N, window, 1)`` whose targets are at ``ends``."""
    window, horizon = int(step["window"]), int(step["horizon"])
    starts = ends - horizon - window + 1
    return np.stack([scaled[s : s + window] for s in starts])[:, :, None]


def encode_window(values: np.ndarray, step: dict[str, Any]) -> np.ndarray:
    """The last ``window`` values (float64, finite) -> a float32 ``(window, 1)`` input."""
    return scale(values[-int(step["window"]) :], step)[:, None]
