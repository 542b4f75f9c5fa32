"""A strong classical model beside every network, fitted on the very same arrays.

A network that loses to a plain logistic regression or to gradient boosting is not
worth serving, and a naive guess (majority class, mean) never shows that. So after a
run is evaluated, the training worker fits scikit-learn's classical models on the
run's own transformed arrays (same split, same preprocessing, same targets) and scores
them with the same metrics on the test split:

- tables: ``LogisticRegression`` / ``Ridge`` and ``HistGradientBoosting{Classifier,
  Regressor}``; the one better on the *validation* split is reported (choosing on the
  test split would flatter it);
- time series: an autoregressive model, ``Ridge`` on the window's lags;
- images: ``LogisticRegression`` on the (pooled) pixels.

Only the metrics, the model's name and its fit time are kept: nothing to unpickle.
The cost is bounded: rows and pixels are capped, and a candidate is not started once
the time budget is spent.

Importing scikit-learn's estimators costs a fresh worker about 2 s on a quiet machine
(scipy.stats and pandas come with them), more than the fits on most tables. Importing
them on a thread while the network trains was tried and measured (bench/
strong_baseline_cost.py, quiet 2-core machine): the import holds the interpreter lock
between torch's small kernels, so the epochs slowed by more than the overlap saved
(added wall time 2.5-3.7 s against 1.9-2.6 s importing after the epochs), and it stays
after the epochs.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from lepton_desktop.core.progress import NullReporter, Reporter

if TYPE_CHECKING:  # the GUI reads verdicts from here without loading torch
    from lepton_desktop.core.training.data import TrainData

#: At most this many training rows are fitted on (a seeded sample of them beyond).
MAX_ROWS = 50_000
#: Images are average-pooled down to at most this many values per image.
MAX_PIXELS = 1024
#: The seconds a strong baseline may take at least; more when the network took long.
MIN_BUDGET_SECONDS = 20.0
#: ... or this share of the network's own training time, whichever is larger.
BUDGET_SHARE = 0.5
#: Below this many input values, a fit runs on one thread (see :func:`fit`).
SMALL_FIT_VALUES = 2_000_000
#: Headline metric of each task, and whether higher is better.
HEADLINE = {
    "classification": ("accuracy", True),
    "regression": ("r2", True),
    "forecasting": ("mse", False),
}

Estimator = Any
Candidate = tuple[str, Callable[[], Estimator]]


def candidates(data: TrainData, seed: int) -> list[Candidate]:
    """The classical models tried for ``data``'s kind and task, cheapest first."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge

    if data.task == "forecasting":
        return [("autoregressive (Ridge on lags)", lambda: Ridge(alpha=1.0))]
    if data.x["train"].ndim > 2:  # images
        return [("LogisticRegression on pixels", lambda: LogisticRegression(max_iter=200))]
    if data.task == "classification":
        return [
            ("LogisticRegression", lambda: LogisticRegression(max_iter=1000)),
            ("HistGradientBoosting", lambda: HistGradientBoostingClassifier(random_state=seed)),
        ]
    return [
        ("Ridge", lambda: Ridge(alpha=1.0)),
        ("HistGradientBoosting", lambda: HistGradientBoostingRegressor(random_state=seed)),
    ]


def features(data: TrainData, split: str) -> np.ndarray:
    """The 2-D array a classical model sees for ``split``: tables as they are, a
    window's lags side by side, images pooled to at most :data:`MAX_PIXELS` values."""
    x = data.x[split]
    if data.task == "forecasting" or x.ndim == 2:
        return x.reshape(len(x), -1).astype(np.float64)
    return pooled(x).reshape(len(x), -1).astype(np.float64)


def pooled(images: np.ndarray) -> np.ndarray:
    """``[N, C, H, W]`` average-pooled by the smallest factor that fits MAX_PIXELS."""
    n, channels, height, width = images.shape
    factor = 1
    while channels * (height // factor) * (width // factor) > MAX_PIXELS:
        factor += 1
    if factor == 1:
        return images
    h, w = height // factor, width // factor
    cropped = images[:, :, : h * factor, : w * factor]
    return cropped.reshape(n, channels, h, factor, w, factor).mean(axis=(3, 5))


def training_rows(data: TrainData, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The training split's features and targets, a seeded sample beyond MAX_ROWS."""
    x, y = features(data, "train"), data.y["train"]
    if len(x) > MAX_ROWS:
        keep = np.sort(np.random.default_rng(seed).choice(len(x), MAX_ROWS, replace=False))
        x, y = x[keep], y[keep]
    return x, y


def score(data: TrainData, estimator: Estimator, split: str) -> dict[str, Any]:
    """The evaluation's metrics of a fitted estimator on ``split`` (targets unscaled)."""
    from lepton_desktop.core.training.evaluate import classification_metrics, regression_metrics

    x, y = features(data, split), data.y[split]
    if data.task == "classification":
        proba = class_probabilities(estimator, x, len(data.classes or []))
        return classification_metrics(y, proba.argmax(1), data.classes or [], proba)
    pred = estimator.predict(x)
    return regression_metrics(_unscale(data, y), _unscale(data, pred))


def _unscale(data: TrainData, values: np.ndarray) -> np.ndarray:
    return values.astype(np.float64) * data.target_std + data.target_mean


def class_probabilities(estimator: Estimator, x: np.ndarray, n_classes: int) -> np.ndarray:
    """``predict_proba`` with one column per class of the run, classes the training
    rows lacked included (at probability 0)."""
    proba = np.zeros((len(x), n_classes))
    proba[:, np.asarray(estimator.classes_, dtype=int)] = estimator.predict_proba(x)
    return proba


def fit_strong_baseline(
    data: TrainData,
    network_metrics: dict[str, Any],
    *,
    network_seconds: float = 0.0,
    seed: int = 0,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Fit the candidates, keep the best on validation, score it on the test split.

    Returns:
        ``{name, metrics, fit_seconds, selected_on, candidates: {name: {validation,
        fit_seconds}}, skipped: [names], gain: {metric, value}, stage_seconds}``
        (``stage_seconds``: the wall time this took, imports and scoring included;
        ``fit_seconds``: the fits alone): ``metrics`` as the
        evaluation's ``test``; ``gain`` is the network's headline minus the baseline's
        (for an error like MSE, the baseline's minus the network's), so a positive gain
        means the network wins.
    """
    stage = time.perf_counter()  # the whole stage: scikit-learn's import included
    reporter = reporter or NullReporter()
    budget = max(MIN_BUDGET_SECONDS, BUDGET_SHARE * network_seconds)
    x, y = training_rows(data, seed)
    key, higher = HEADLINE[data.task]
    options = candidates(data, seed)
    started = time.perf_counter()
    tried: dict[str, dict[str, Any]] = {}
    fitted: dict[str, Estimator] = {}
    skipped = []
    for index, (name, make) in enumerate(options):
        if fitted and time.perf_counter() - started > budget:
            skipped.append(name)
            continue
        reporter.update(index, len(options), f"strong baseline: fitting {name}")
        began = time.perf_counter()
        estimator = fit(make(), x, y)
        seconds = time.perf_counter() - began
        fitted[name] = estimator
        tried[name] = {"validation": score(data, estimator, "val")[key], "fit_seconds": seconds}
    pick = max if higher else min
    best = pick(tried, key=lambda n: tried[n]["validation"])
    metrics = score(data, fitted[best], "test")
    difference = network_metrics[key] - metrics[key]
    return {
        "name": best,
        "metrics": metrics,
        "fit_seconds": sum(c["fit_seconds"] for c in tried.values()),
        "selected_on": "validation" if len(tried) > 1 else None,
        "candidates": tried,
        "skipped": skipped,
        "gain": {"metric": key, "value": float(difference if higher else -difference)},
        "stage_seconds": time.perf_counter() - stage,
    }


def fit(estimator: Estimator, x: np.ndarray, y: np.ndarray) -> Estimator:
    """``estimator.fit(x, y)``, its convergence warnings kept out of the worker's log
    (an unconverged logistic regression after its iterations is still a fair anchor).

    Small data fits on one thread: gradient boosting on 700 rows took 28-45 s with two
    OpenMP threads on a busy 2-core machine and 0.8 s with one (spinning threads that
    wait for each other's time slices).
    """
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    threads = 1 if x.size < SMALL_FIT_VALUES else None
    with warnings.catch_warnings(), threadpool_limits(threads):
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(x, y)


def verdict(evaluation: dict[str, Any]) -> str | None:
    """In words, when the network loses to its strong baseline on the test split::

    HistGradientBoosting beats this network on the test split: accuracy 0.96 vs 0.93
    """
    strong = evaluation.get("strong_baseline") or {}
    gain = strong.get("gain") or {}
    if gain.get("value") is None or gain["value"] >= 0:
        return None
    key = gain["metric"]
    ours, theirs = evaluation["test"][key], strong["metrics"][key]
    return (
        f"{strong['name']} beats this network on the test split: "
        f"{key} {_number(theirs)} vs {_number(ours)}"
    )


def gain(evaluation: dict[str, Any] | None) -> float | None:
    """The network's gain over its strong baseline (see :func:`fit_strong_baseline`)."""
    strong = (evaluation or {}).get("strong_baseline") or {}
    value = (strong.get("gain") or {}).get("value")
    return None if value is None else float(value)


def summary(evaluation: dict[str, Any], headline: tuple[str, ...]) -> dict[str, Any] | None:
    """``train --json``'s ``strong_baseline``: ``{name, metrics, fit_seconds, gain}`` with
    the metrics in ``headline``, or None when the run fitted none."""
    strong = evaluation.get("strong_baseline")
    if not strong:
        return None
    return {
        "name": strong["name"],
        "metrics": {k: strong["metrics"][k] for k in headline if k in strong["metrics"]},
        "fit_seconds": strong["fit_seconds"],
        "gain": strong["gain"],
    }


def _number(value: float) -> str:
    return f"{value:.3f}" if abs(value) < 100 else f"{value:,.1f}"
