"""Honest evaluation on the test split, beside a naive baseline.

A model is only worth something if it beats the obvious guess: the majority class,
the training mean, or (for forecasts) the last observed value. The scores are
scikit-learn's definitions computed in numpy (:mod:`.metrics`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lepton_desktop.core.training import metrics as measure
from lepton_desktop.core.training.data import TrainData

PERMUTATION_REPEATS = 3


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise probabilities."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def classification_metrics(
    y: np.ndarray, pred: np.ndarray, classes: list[str], proba: np.ndarray | None = None
) -> dict[str, Any]:
    """Accuracy, macro precision/recall/F1, per-class scores, confusion matrix, ROC-AUC."""
    precision, recall, f1, support = measure.precision_recall_f1_support(y, pred, len(classes))
    result: dict[str, Any] = {
        "accuracy": measure.accuracy(y, pred),
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "f1": float(f1.mean()),
        "per_class": {
            c: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for c, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
        },
        "confusion_matrix": measure.confusion_matrix(y, pred, len(classes)).tolist(),
        "classes": classes,
    }
    if proba is not None and len(classes) == 2 and len(np.unique(y)) == 2:
        result["roc_auc"] = measure.roc_auc(y, proba[:, 1])
    return result


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """MSE, MAE, RMSE and R2 (in the target's own units)."""
    mse = measure.mean_squared_error(y, pred)
    return {
        "mse": mse,
        "mae": measure.mean_absolute_error(y, pred),
        "rmse": float(np.sqrt(mse)),
        "r2": measure.r2(y, pred),
    }


def evaluate(data: TrainData, predict: Callable[[np.ndarray], np.ndarray]) -> dict[str, Any]:
    """Test metrics, the baseline's metrics, and permutation importance (tabular).

    Args:
        data: the run's data (targets of regression/forecasting are standardized).
        predict: raw model outputs for an input array.
    """
    x, y = data.x["test"], data.y["test"]
    metrics = _score(data, predict(x), y)
    evaluation: dict[str, Any] = {
        "task": data.task,
        "test": metrics,
        "baseline": _baseline(data),
        "n_test": len(y),
    }
    evaluation["baseline_name"] = {
        "classification": "majority class",
        "regression": "training mean",
        "forecasting": "persistence (last value)",
    }[data.task]
    if data.groups and len(data.groups) > 1:
        evaluation["importance"] = permutation_importance(data, predict)
    if data.task != "classification":
        true, pred = _unscale(data, y), _unscale(data, predict(x).squeeze(-1))
        keep = np.linspace(0, len(true) - 1, min(len(true), 2000)).astype(int)
        evaluation["scatter"] = {"true": true[keep].tolist(), "pred": pred[keep].tolist()}
    return evaluation


def _score(data: TrainData, out: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    if data.task == "classification":
        proba = softmax(out)
        return classification_metrics(y, proba.argmax(1), data.classes or [], proba)
    return regression_metrics(_unscale(data, y), _unscale(data, out.squeeze(-1)))


def _unscale(data: TrainData, values: np.ndarray) -> np.ndarray:
    return values.astype(np.float64) * data.target_std + data.target_mean


def _baseline(data: TrainData) -> dict[str, Any]:
    y = data.y["test"]
    if data.task == "classification":
        majority = int(np.bincount(data.y["train"]).argmax())
        return classification_metrics(y, np.full_like(y, majority), data.classes or [])
    if data.task == "forecasting":
        guess = data.baseline_x["test"]
    else:
        guess = np.full(len(y), float(data.y["train"].mean()))
    return regression_metrics(_unscale(data, y), _unscale(data, guess))


def _headline(data: TrainData, out: np.ndarray, y: np.ndarray) -> float:
    if data.task == "classification":
        return float((out.argmax(1) == y).mean())
    return measure.r2(y, out.squeeze(-1))


def permutation_importance(
    data: TrainData, predict: Callable[[np.ndarray], np.ndarray], seed: int = 0
) -> dict[str, float]:
    """Drop in test accuracy (or R2) when one source column is shuffled, per column.

    One-hot columns of the same source column are shuffled together, so a category
    counts once. Sorted from most to least important.
    """
    rng = np.random.default_rng(seed)
    x, y = data.x["test"], data.y["test"]
    reference = _headline(data, predict(x), y)
    drops = {}
    for name, indices in data.groups.items():
        scores = []
        for _ in range(PERMUTATION_REPEATS):
            shuffled = x.copy()
            shuffled[:, indices] = x[rng.permutation(len(x))][:, indices]
            scores.append(_headline(data, predict(shuffled), y))
        drops[name] = reference - float(np.mean(scores))
    return dict(sorted(drops.items(), key=lambda item: -item[1]))
