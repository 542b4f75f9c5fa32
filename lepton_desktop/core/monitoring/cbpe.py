"""Quality estimated before labels arrive: confidence-based performance estimation (CBPE).

NannyML's CBPE reads a classifier's own probabilities: if they are calibrated, a row
answered with confidence 0.9 is right 90% of the time, so the mean confidence of the
served rows estimates their accuracy, and the expected confusion matrix (each row
counts its calibrated probability as a true positive of the class it was given, the
rest as a false positive; every other class's probability as a false negative of that
class) estimates per-class F1. Labels are not needed; they check the estimate later.

Calibration is checked once per version on its **test split**: the expected
calibration error (ECE: the gap between confidence and accuracy over ten bins of
confidence, weighted by rows; scikit-learn's ``calibration_curve`` bins). When it is
above :data:`ECE_LIMIT`, one isotonic map per class (one-vs-rest) is fitted on the
**validation split** with scikit-learn's ``IsotonicRegression``, as NannyML does, and
applied (rows renormalised) when it lowers the test ECE; the estimate says which was
used. The maps are stored as their knots (plain numbers), never a pickle.

Building an estimator runs the model (torch) on the val and test rows, so it is done
where torch is loaded anyway: the serve worker at start, ``lepton-desktop monitor``
and ``Project.monitor``. The Monitoring tab only reads what was built (its DB thread
never imports torch).
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from lepton_desktop.core.errors import LeptonError, NotFoundError
from lepton_desktop.core.monitoring.window import Window
from lepton_desktop.core.store import models as model_store
from lepton_desktop.core.store import monitoring as store

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext

#: Probabilities with a test-split ECE above this are calibrated (isotonic, on val).
ECE_LIMIT = 0.05
#: Bins of confidence for the ECE (scikit-learn's calibration_curve, uniform).
ECE_BINS = 10
#: Served rows an estimate reads at most (the newest of the window).
MAX_ESTIMATE_ROWS = 20_000
#: Fewer served rows than this give no estimate (as quality.MIN_LABELLED for labels).
MIN_ESTIMATE_ROWS = 20
#: Validation rows needed to fit a calibration map.
MIN_CALIBRATION_ROWS = 20
FORMAT = 1


class EstimatorUnavailable(LeptonError):
    """A version cannot be estimated (not a classifier, a kind not handled, no data)."""


# -- the arithmetic ------------------------------------------------------------------


def expected_calibration_error(probabilities: np.ndarray, truth: np.ndarray) -> float:
    """ECE of the top-class confidence over :data:`ECE_BINS` uniform bins.

    ``truth`` holds class indices. Bins as scikit-learn's ``calibration_curve``
    (``strategy="uniform"``): edges ``linspace(0, 1, bins + 1)``, a value on an
    inner edge goes to the bin below it.
    """
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == truth).astype(float)
    edges = np.linspace(0.0, 1.0, ECE_BINS + 1)
    bins = np.searchsorted(edges[1:-1], confidence)
    confidence_sum = np.bincount(bins, weights=confidence, minlength=ECE_BINS)
    correct_sum = np.bincount(bins, weights=correct, minlength=ECE_BINS)
    return float(np.abs(correct_sum - confidence_sum).sum() / max(len(truth), 1))


def calibrate(probabilities: np.ndarray, maps: list[dict[str, list[float]]] | None
              ) -> np.ndarray:  # fmt: skip
    """Apply the per-class isotonic maps (``None``: as they are), rows renormalised."""
    if not maps:
        return probabilities
    out = np.column_stack([np.interp(probabilities[:, k], m["x"], m["y"])
                           for k, m in enumerate(maps)])  # fmt: skip
    total = out.sum(axis=1, keepdims=True)
    return np.divide(out, total, out=probabilities.copy(), where=total > 0)


def estimate(probabilities: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Estimated accuracy and macro F1 from calibrated ``probabilities`` and the class
    each row was given (``predicted``, indices)."""
    rows, classes = probabilities.shape
    given = np.zeros_like(probabilities)
    given[np.arange(rows), predicted] = 1.0
    tp = (given * probabilities).sum(axis=0)
    fp = (given * (1.0 - probabilities)).sum(axis=0)
    fn = ((1.0 - given) * probabilities).sum(axis=0)
    denominator = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denominator, out=np.zeros(classes), where=denominator > 0)
    return {"accuracy": float(tp.sum() / rows), "f1": float(f1.mean())}


def fit_maps(probabilities: np.ndarray, truth: np.ndarray) -> list[dict[str, list[float]]]:
    """One isotonic map per class (one-vs-rest), fitted on validation rows."""
    from sklearn.isotonic import IsotonicRegression

    maps = []
    for k in range(probabilities.shape[1]):
        fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        fitted.fit(probabilities[:, k], (truth == k).astype(float))
        maps.append({"x": fitted.X_thresholds_.tolist(), "y": fitted.y_thresholds_.tolist()})
    return maps


def choose(val: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
           classes: list[str]) -> dict[str, Any]:  # fmt: skip
    """The estimator of a version from its val and test probabilities and truths."""
    raw = expected_calibration_error(*test)
    found: dict[str, Any] = {"format": FORMAT, "classes": classes, "ece_test": raw,
                             "ece_limit": ECE_LIMIT, "calibration": "none", "maps": None,
                             "rows": {"val": len(val[1]), "test": len(test[1])}}  # fmt: skip
    if raw <= ECE_LIMIT or len(val[1]) < MIN_CALIBRATION_ROWS:
        found["note"] = ("calibrated on the test split" if raw <= ECE_LIMIT else
                         "too few validation rows to calibrate")  # fmt: skip
        return found
    maps = fit_maps(*val)
    calibrated = expected_calibration_error(calibrate(test[0], maps), test[1])
    found["ece_test_calibrated"] = calibrated
    if calibrated < raw:
        found.update(calibration="isotonic", maps=maps, note="isotonic maps fitted on val")
    else:
        found["note"] = "isotonic maps did not lower the test ECE: probabilities used as they are"
    return found


# -- building and keeping an estimator -------------------------------------------------


def ensure(ctx: ProjectContext, model: str, version: int, build_missing: bool
           ) -> dict[str, Any] | None:  # fmt: skip
    """The estimator of ``model:version``: stored, or built now when ``build_missing``.

    ``{"unavailable": why}`` is stored for a version that cannot be estimated, so it is
    never tried again; ``None``: not built yet (and not asked to).
    """
    found = store.estimator(ctx.conn, model, version)
    if found is None and build_missing:
        try:
            found = build(ctx, model, version)
        except EstimatorUnavailable as exc:
            found = {"unavailable": str(exc)}
        store.put_estimator(ctx.conn, model, version, found)
    return found


def build(ctx: ProjectContext, model: str, version: int) -> dict[str, Any]:
    """Run ``model:version`` on its val and test rows and choose its calibration.

    Raises:
        EstimatorUnavailable: not a classifier, not a table, or its data is gone.
    """
    ref = f"{model}:{version}"
    try:
        registered = model_store.resolve(ctx.conn, ref)
    except NotFoundError as exc:
        raise EstimatorUnavailable(f"{ref}: {exc}") from None
    if registered.task != "classification" or not registered.params.get("classes"):
        raise EstimatorUnavailable(f"{ref} is not a classifier: CBPE estimates classification")
    parts = _split_probabilities(ctx, registered)
    return choose(parts["val"], parts["test"], [str(c) for c in registered.params["classes"]])


def _split_probabilities(ctx: ProjectContext, registered: Any
                         ) -> dict[str, tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    """The model's probabilities and the true class indices on its val and test rows."""
    from lepton_desktop.core.datasets import prep
    from lepton_desktop.core.datasets.frame import load_frame
    from lepton_desktop.core.inference.predictor import Predictor
    from lepton_desktop.core.preprocessing.tabular import undo_steps
    from lepton_desktop.core.progress import NullReporter
    from lepton_desktop.core.store import datasets as dataset_store
    from lepton_desktop.core.training import data as training_data
    from lepton_desktop.core.training.config import TrainConfig

    ref = registered.ref
    try:
        if registered.dataset_version_id is None:
            raise NotFoundError(f"{ref} records no dataset version")
        dataset = dataset_store.get_version(ctx.conn, registered.dataset_version_id)
    except NotFoundError as exc:
        raise EstimatorUnavailable(f"no test data for {ref}: {exc}") from None
    if dataset.kind == "images":
        return _image_probabilities(ctx, registered, dataset)
    if dataset.kind != "tabular":
        raise EstimatorUnavailable(f"{ref}: CBPE is estimated for tables and images "
                                   f"({dataset.kind} not yet)")  # fmt: skip
    config = TrainConfig.from_dict(registered.params.get("config", {}))
    target = str(registered.params.get("target") or config.target or dataset.target)
    frame = load_frame(ctx.conn, dataset, NullReporter())
    frame = training_data.split_as_trained(frame, target, config, True)
    raw = undo_steps(prep.pipeline_chain(ctx.conn, dataset), frame.columns)
    predictor = Predictor.from_project(ctx, ref)
    classes = [str(c) for c in registered.params["classes"]]
    names = [c["name"] for c in predictor.raw_inputs]
    out = {}
    for split, number in (("val", 1), ("test", 2)):
        rows = np.flatnonzero(frame.split == number)
        records = [{n: _plain(raw[n][i]) for n in names if n in raw} for i in rows]
        probabilities = np.zeros((0, len(classes)))
        for start in range(0, len(records), 1000):
            answers = predictor.predict(records[start : start + 1000])
            chunk = np.array([[a["probabilities"][c] for c in classes] for a in answers])
            probabilities = np.vstack([probabilities, chunk.reshape(-1, len(classes))])
        truth = np.array([classes.index(str(v)) for v in frame.columns[target][rows]])
        out[split] = (probabilities, truth.astype(np.int64))
    if len(out["test"][1]) == 0:
        raise EstimatorUnavailable(f"{ref}: its dataset has no test split to check calibration")
    return out


def _image_probabilities(ctx: ProjectContext, registered: Any, dataset: Any
                         ) -> dict[str, tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    """A CNN's probabilities and true class indices on its val and test images: the
    pictures decoded and normalised as training did (its run's split and seed), run
    through the served predictor's network."""
    from lepton_desktop.core.inference.predictor import Predictor
    from lepton_desktop.core.training import data as training_data
    from lepton_desktop.core.training.config import TrainConfig
    from lepton_desktop.core.training.evaluate import softmax

    ref = registered.ref
    classes = [str(c) for c in registered.params["classes"]]
    config = TrainConfig.from_dict(registered.params.get("config", {}))
    data = training_data.load(ctx.conn, dataset, config)
    if [str(c) for c in data.classes or []] != classes:
        raise EstimatorUnavailable(f"{ref}: its dataset's classes are no longer the model's")
    predictor = Predictor.from_project(ctx, ref)
    out = {}
    for split in ("val", "test"):
        x = data.x[split]
        chunks = [softmax(predictor.forward(x[i : i + 256]).astype(np.float64))
                  for i in range(0, len(x), 256)]  # fmt: skip
        probabilities = np.vstack(chunks) if chunks else np.zeros((0, len(classes)))
        out[split] = (probabilities, data.y[split].astype(np.int64))
    if len(out["test"][1]) == 0:
        raise EstimatorUnavailable(f"{ref}: its dataset has no test split to check calibration")
    return out


def _plain(value: Any) -> Any:
    """A numpy scalar as the plain value a client would send (missing: None)."""
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and math.isnan(value) else value


# -- the estimate of a window ----------------------------------------------------------


def estimated_quality(ctx: ProjectContext, window: Window, model: str, version: int | None,
                      build_missing: bool, starts: np.ndarray | None = None,
                      bin_seconds: float = 60.0) -> dict[str, Any]:  # fmt: skip
    """CBPE's accuracy and macro F1 over the newest answered rows of the window.

    With ``starts`` (the chart's bins), ``series`` holds the estimated accuracy per bin.
    """
    since = -math.inf if window.since is None else window.since
    rows = store.served_probabilities(ctx.conn, model, version, since, window.until,
                                      MAX_ESTIMATE_ROWS)  # fmt: skip
    out: dict[str, Any] = {"method": "CBPE", "rows": 0, "metrics": {"accuracy": None,
                           "f1": None}, "versions": {}, "note": ""}  # fmt: skip
    if not rows:
        out["note"] = "no answered rows with probabilities in this window"
        return out
    estimators = {v: ensure(ctx, model, v, build_missing) for v in sorted({r[1] for r in rows})}
    out["versions"] = {str(v): _describe(e) for v, e in estimators.items()}
    times, probabilities, predicted = _usable(rows, estimators)
    out["rows"] = len(times)
    if len(times) < MIN_ESTIMATE_ROWS:
        notes = [d["note"] for d in out["versions"].values() if d.get("note")]
        out["note"] = "; ".join(notes) or f"fewer than {MIN_ESTIMATE_ROWS} rows to estimate on"
        return out
    out["metrics"] = estimate(probabilities, predicted)
    out["truncated"] = len(rows) >= MAX_ESTIMATE_ROWS
    if starts is not None and len(starts):
        out["series"] = _per_bin(times, probabilities, predicted, starts, bin_seconds)
    return out


def _describe(found: dict[str, Any] | None) -> dict[str, Any]:
    if found is None:
        return {"note": "not estimated yet: a serve worker or lepton-desktop monitor builds "
                        "the estimator"}  # fmt: skip
    if "unavailable" in found:
        return {"note": found["unavailable"]}
    return {k: found.get(k) for k in ("calibration", "ece_test", "ece_test_calibrated",
                                      "ece_limit", "rows", "note")}  # fmt: skip


def _usable(rows: list[tuple[float, int, str | None, str | None]],
            estimators: dict[int, dict[str, Any] | None]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Times, calibrated probabilities and given classes of the rows that can be read."""
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for number, found in estimators.items():
        if not found or "unavailable" in found:
            continue
        classes = found["classes"]
        index = {c: i for i, c in enumerate(classes)}
        picked = [(ts, label, probs) for ts, v, label, probs in rows
                  if v == number and probs is not None and label in index]  # fmt: skip
        if not picked:
            continue
        matrix = np.array([[float(p.get(c, 0.0)) for c in classes]
                           for p in (json.loads(r[2]) for r in picked)])  # fmt: skip
        parts.append((np.array([r[0] for r in picked]), calibrate(matrix, found.get("maps")),
                      np.array([index[r[1]] for r in picked])))  # fmt: skip
    # Versions with other classes cannot share one confusion matrix: the first one's count.
    parts = [p for p in parts if parts and p[1].shape[1] == parts[0][1].shape[1]]
    if not parts:
        return np.zeros(0), np.zeros((0, 1)), np.zeros(0, dtype=np.int64)
    return (np.concatenate([p[0] for p in parts]), np.vstack([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]))  # fmt: skip


def _per_bin(times: np.ndarray, probabilities: np.ndarray, predicted: np.ndarray,
             starts: np.ndarray, bin_seconds: float) -> dict[str, Any]:  # fmt: skip
    """Estimated accuracy per chart bin (``None`` on fewer than MIN_ESTIMATE_ROWS rows)."""
    index = np.floor((times - float(starts[0])) / bin_seconds).astype(np.int64)
    inside = (index >= 0) & (index < len(starts))
    confidence = probabilities[np.arange(len(predicted)), predicted]
    rows = np.bincount(index[inside], minlength=len(starts))
    sums = np.bincount(index[inside], weights=confidence[inside], minlength=len(starts))
    values = [float(s / n) if n >= MIN_ESTIMATE_ROWS else None
              for s, n in zip(sums, rows, strict=True)]  # fmt: skip
    return {"metric": "accuracy", "values": values, "rows": rows.tolist()}
