"""The scores of an evaluation, in numpy: scikit-learn's definitions, not its import.

``sklearn.metrics`` costs about a second to import (it pulls in scipy), which was a
sixth of a short ``train``; these few scores are a handful of array operations each.
Each function follows the scikit-learn function it names, edge cases included
(``tests/core/training/test_metrics.py`` compares them on random inputs).
"""

from __future__ import annotations

import numpy as np


def accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Share of exact matches (``accuracy_score``)."""
    return float(np.mean(np.asarray(y) == np.asarray(pred)))


def confusion_matrix(y: np.ndarray, pred: np.ndarray, n_labels: int) -> np.ndarray:
    """Counts of (true, predicted) label pairs for labels ``0..n_labels-1``.

    Pairs with a label outside that range are left out, as ``confusion_matrix`` with
    ``labels=range(n_labels)`` leaves them out.
    """
    y, pred = np.asarray(y, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    keep = (y >= 0) & (y < n_labels) & (pred >= 0) & (pred < n_labels)
    pairs = y[keep] * n_labels + pred[keep]
    return np.bincount(pairs, minlength=n_labels * n_labels).reshape(n_labels, n_labels)


def precision_recall_f1_support(
    y: np.ndarray, pred: np.ndarray, n_labels: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-label precision, recall, F1 and support (``precision_recall_fscore_support``
    with ``labels=range(n_labels), zero_division=0``): a ratio with a zero denominator
    is 0."""
    counts = confusion_matrix(y, pred, n_labels)
    true_positive = np.diag(counts).astype(np.float64)
    support = counts.sum(axis=1)  # rows: true labels
    predicted = counts.sum(axis=0)
    precision = _ratio(true_positive, predicted)
    recall = _ratio(true_positive, support)
    f1 = _ratio(2 * true_positive, support + predicted)
    return precision, recall, f1, support


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros(len(numerator), dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of binary labels (``roc_auc_score``).

    The Mann-Whitney form: the chance that a random positive scores above a random
    negative, ties counting one half (equal to the trapezoids under the ROC curve).
    Raises ValueError when ``y`` holds only one class, as scikit-learn does.
    """
    y = np.asarray(y) == 1
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        raise ValueError("ROC AUC needs both classes in y")
    ranks = _average_ranks(np.asarray(score, dtype=np.float64))
    above = ranks[y].sum() - positives * (positives + 1) / 2
    return float(above / (positives * negatives))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    mean_rank = (starts + ends + 1) / 2  # ranks starts+1 .. ends, averaged
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def mean_squared_error(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean of squared differences."""
    return float(np.mean((np.asarray(y) - np.asarray(pred)) ** 2))


def mean_absolute_error(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean of absolute differences."""
    return float(np.mean(np.abs(np.asarray(y) - np.asarray(pred))))


def r2(y: np.ndarray, pred: np.ndarray) -> float:
    """Coefficient of determination (``r2_score``).

    A constant ``y`` gives 1.0 when predicted exactly and 0.0 otherwise; fewer than two
    samples give NaN (the score is not defined).
    """
    y, pred = np.asarray(y), np.asarray(pred)
    if len(y) < 2:
        return float("nan")
    residual = float(((y - pred) ** 2).sum())
    spread = float(((y - y.mean()) ** 2).sum())
    if spread == 0:
        return 1.0 if residual == 0 else 0.0
    return 1.0 - residual / spread
