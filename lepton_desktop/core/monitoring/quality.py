"""Live quality from feedback labels: the metrics of the model's kind over a window.

Classification gets accuracy, precision, recall and F1 (macro and per class) and the
confusion matrix; regression and forecasting get MAE, RMSE and R². Both are computed
from aggregates SQL returns (a confusion matrix; sums of errors), so a million labels
cost one query. The formulas are scikit-learn's (``precision_recall_fscore_support``
with ``zero_division=0``, ``r2_score``), and a test checks that they agree on real
data. Fewer than :data:`MIN_LABELLED` labelled rows give no metric at all: the count
is reported and the metrics are ``None``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from lepton_desktop.core.errors import InvalidOptionError, NotFoundError
from lepton_desktop.core.monitoring.window import Window
from lepton_desktop.core.store import models as model_store
from lepton_desktop.core.store import monitoring as store

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext

#: No metric is claimed on fewer labelled rows than this.
MIN_LABELLED = 20


@dataclasses.dataclass(frozen=True)
class Quality:
    """Realised quality over a window.

    Attributes:
        kind: ``classification`` or ``regression``.
        labelled: labelled rows in the window (each row's newest label).
        metrics: ``accuracy``, ``precision``, ``recall``, ``f1`` (macro) or ``mae``,
            ``rmse``, ``r2``; ``None`` values below :data:`MIN_LABELLED` rows.
        per_class: ``{label: {"precision", "recall", "f1", "support"}}`` (classification).
        labels: the confusion matrix's labels (rows: true, columns: predicted).
        confusion: the confusion matrix, as lists of counts.
    """

    kind: str
    labelled: int
    metrics: dict[str, float | None]
    per_class: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    labels: list[str] = dataclasses.field(default_factory=list)
    confusion: list[list[int]] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def live_quality(ctx: ProjectContext, window: Window, model: str, version: int | None,
                 kind: str) -> Quality:  # fmt: skip
    """Quality of ``model`` (``version``: one version, ``None``: all) over ``window``."""
    since = -math.inf if window.since is None else window.since
    if kind == "classification":
        cells = store.confusion(ctx.conn, model, version, since, window.until)
        return classification(cells)
    return regression(*store.regression_errors(ctx.conn, model, version, since, window.until))


def classification(cells: list[tuple[str, str | None, int]]) -> Quality:
    """Metrics from ``(true, predicted, rows)`` cells (answers not captured are skipped)."""
    cells = [(t, p, n) for t, p, n in cells if p is not None]
    labels = sorted({str(t) for t, _, _ in cells} | {str(p) for _, p, _ in cells})
    position = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for truth, predicted, n in cells:
        matrix[position[str(truth)], position[str(predicted)]] += n
    labelled = int(matrix.sum())
    names = ("accuracy", "precision", "recall", "f1")
    if labelled < MIN_LABELLED:
        return Quality("classification", labelled, dict.fromkeys(names), {}, labels,
                       matrix.tolist())  # fmt: skip
    correct = np.diag(matrix).astype(float)
    predicted, support = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = _ratio(correct, predicted)
    recall = _ratio(correct, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    # Macro averages over the labels that occur as truth or prediction, as scikit-learn.
    metrics: dict[str, float | None] = {
        "accuracy": float(correct.sum() / labelled),
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "f1": float(f1.mean()),
    }
    per_class = {
        label: {"precision": float(precision[i]), "recall": float(recall[i]),
                "f1": float(f1[i]), "support": int(support[i])}
        for i, label in enumerate(labels)
    }  # fmt: skip
    return Quality("classification", labelled, metrics, per_class, labels, matrix.tolist())


def regression(rows: int, abs_sum: float, sq_sum: float, y_sum: float, y_sq: float) -> Quality:
    """MAE, RMSE and R² from error sums over ``rows`` labelled answers."""
    if rows < MIN_LABELLED:
        return Quality("regression", rows, {"mae": None, "rmse": None, "r2": None})
    total = y_sq - y_sum * y_sum / rows  # Σ(y - ȳ)²
    r2 = 1.0 - sq_sum / total if total > 0 else (1.0 if sq_sum == 0 else 0.0)
    return Quality(
        "regression", rows,
        {"mae": abs_sum / rows, "rmse": math.sqrt(sq_sum / rows), "r2": r2},
    )  # fmt: skip


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator``, 0 where the denominator is 0 (``zero_division=0``)."""
    return np.divide(numerator, denominator, out=np.zeros(len(numerator)),
                     where=denominator > 0)  # fmt: skip


#: The largest count window (labelled rows) accepted.
MAX_LAST_LABELLED = 10_000_000
#: The metric drawn over time (and by the reference line) for each kind.
CHART_METRIC = {"classification": "accuracy", "regression": "mae"}


def last_labelled(ctx: ProjectContext, model: str, version: int | None, kind: str,
                  count: int) -> Quality:  # fmt: skip
    """Quality over the newest ``count`` labelled rows of ``model`` (a count window).

    Raises:
        InvalidOptionError: ``count`` outside 1 .. :data:`MAX_LAST_LABELLED`.
    """
    if not 1 <= count <= MAX_LAST_LABELLED:
        raise InvalidOptionError(
            f"--last-labelled {count!r}: give a count of labelled rows from 1 to "
            f"{MAX_LAST_LABELLED:,}"
        )
    if kind == "classification":
        return classification(store.confusion_last(ctx.conn, model, version, count))
    return regression(*store.regression_errors_last(ctx.conn, model, version, count))


def reference(ctx: ProjectContext, model: str, version: int | None) -> dict[str, Any] | None:
    """The offline test metrics of ``model:version`` (``None``: its newest served version),
    the line live quality is read against; ``None`` when the version is gone."""
    if version is None:
        served = [v for name, v, *_ in store.served_models(ctx.conn) if name == model]
        if not served:
            return None
        version = max(served)
    try:
        found = model_store.resolve(ctx.conn, f"{model}:{version}")
    except NotFoundError:
        return None
    names = ("accuracy", "precision", "recall", "f1", "mae", "rmse", "r2")
    metrics = {k: float(found.metrics[k]) for k in names if k in found.metrics}
    return {"version": version, "split": "test", "metrics": metrics}


def over_time(ctx: ProjectContext, window: Window, model: str, version: int | None, kind: str,
              starts: np.ndarray, bin_seconds: float) -> dict[str, Any]:  # fmt: skip
    """The chart's metric (accuracy, or MAE) per bin of the traffic series.

    A bin with fewer than :data:`MIN_LABELLED` labelled rows claims no value (``None``).
    """
    metric = CHART_METRIC[kind]
    values: list[float | None] = [None] * len(starts)
    labelled = [0] * len(starts)
    if len(starts):
        first = float(starts[0])
        rows = store.quality_bins(ctx.conn, model, version, first, window.until, bin_seconds,
                                  kind == "classification")  # fmt: skip
        for index, count, score in rows:
            if 0 <= index < len(starts):
                labelled[index] = int(count)
                values[index] = float(score) / count if count >= MIN_LABELLED else None
    return {"metric": metric, "start": [float(s) for s in starts], "bin_seconds": bin_seconds,
            "labelled": labelled, "values": values, "min": MIN_LABELLED}  # fmt: skip
