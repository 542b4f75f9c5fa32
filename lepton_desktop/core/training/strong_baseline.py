"""A strong classical model beside every network, fitted on the very same arrays.

A network that loses to a plain logistic regression or to gradient boosting is not
worth serving, and a naive guess (majority class, mean) never shows that. So each run
fits scikit-learn's classical models on the run's own transformed arrays (same split,
same preprocessing, same targets) and scores them with the evaluation's metrics on the
test split:

- tables: ``LogisticRegression`` / ``Ridge`` and ``HistGradientBoosting{Classifier,
  Regressor}``; the one better on the *validation* split is reported (choosing on the
  test split would flatter it);
- time series: an autoregressive model, ``Ridge`` on the window's lags;
- images: ``LogisticRegression`` on the (pooled) pixels.

Only the metrics, the model's name and its fit time are kept: nothing to unpickle.
The cost is bounded: rows and pixels are capped, and once the time budget is spent
with one candidate fitted, the others are given up.

**Beside the network, not after it.** Importing scikit-learn's estimators costs a fresh
process about 2 s (scipy.stats and pandas come with them): more than the fits on most
tables and more than many networks take to train. Importing it on a thread of the
training process was measured slower (the import holds the interpreter lock between
torch's small kernels). So a fresh training process starts a :class:`BaselineProcess`
first (:func:`prewarm`, before torch is imported): a low-priority child that imports
scikit-learn while the parent imports torch and loads the data, receives the arrays,
and fits while the network trains (small networks train on one torch thread, leaving
the other core free). The parent collects the results after its own evaluation. A
process where scikit-learn is already imported (a notebook, the test suite) fits here,
after the epochs: nothing to import, nothing to start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import subprocess
import sys
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from lepton_desktop.core import processes
from lepton_desktop.core.progress import NullReporter, Reporter
from lepton_desktop.core.training.pipe_frames import frame, read_frame

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
#: How often (s) the parent looks for the child's results and passes progress on.
POLL_S = 0.2
#: ``lepton-desktop worker KIND``: the process beside (see :class:`BaselineProcess`).
STRONG_BASELINE_KIND = "strong-baseline"
#: Headline metric of each task, and whether higher is better.
HEADLINE = {
    "classification": ("accuracy", True),
    "regression": ("r2", True),
    "forecasting": ("mse", False),
}
#: Errors of a fit that mean "no comparison here", not "the run failed" (the
#: training service records them as ``strong_baseline_error``).
FIT_ERRORS: tuple[type[Exception], ...] = (ValueError, ArithmeticError, MemoryError)

Estimator = Any


class BaselineUnavailable(RuntimeError):
    """The process fitting the strong baseline ended before any result."""


#: Every error that means "no strong baseline for this run" (recorded as such).
NO_COMPARISON: tuple[type[Exception], ...] = (*FIT_ERRORS, BaselineUnavailable)


@dataclasses.dataclass
class Inputs:
    """What the candidates are fitted and scored on: plain arrays (no torch), so that
    a child process can take them."""

    task: str
    images: bool
    n_classes: int
    seed: int
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    x_test: np.ndarray


@dataclasses.dataclass
class Fitted:
    """One fitted candidate's answers: class probabilities (classification) or
    predictions, on the validation and test splits."""

    name: str
    fit_seconds: float
    val: np.ndarray
    test: np.ndarray


def candidate_names(task: str, images: bool) -> list[str]:
    """The classical models tried for a task and kind, cheapest first."""
    if task == "forecasting":
        return ["autoregressive (Ridge on lags)"]
    if images:
        return ["LogisticRegression on pixels"]
    if task == "classification":
        return ["LogisticRegression", "HistGradientBoosting"]
    return ["Ridge", "HistGradientBoosting"]


def make_estimator(name: str, task: str, seed: int) -> Estimator:
    """A fresh, unfitted scikit-learn estimator for candidate ``name``."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge

    if name == "HistGradientBoosting" and task == "classification":
        return HistGradientBoostingClassifier(random_state=seed)
    if name == "HistGradientBoosting":
        return HistGradientBoostingRegressor(random_state=seed)
    if name == "LogisticRegression":
        return LogisticRegression(max_iter=1000)
    if name == "LogisticRegression on pixels":
        return LogisticRegression(max_iter=200)
    return Ridge(alpha=1.0)  # "Ridge" and the autoregressive model on lags


def inputs(data: TrainData, seed: int) -> Inputs:
    """The arrays of ``data`` the candidates see (see :func:`features`)."""
    x, y = training_rows(data, seed)
    images = data.task != "forecasting" and data.x["train"].ndim > 2
    kind = np.float32 if images else np.float64  # pixels: half the bytes to send

    def side(split: str) -> np.ndarray:
        return features(data, split).astype(kind, copy=False)

    return Inputs(
        task=data.task,
        images=images,
        n_classes=len(data.classes or []),
        seed=seed,
        x_train=x.astype(kind, copy=False),
        y_train=y,
        x_val=side("val"),
        x_test=side("test"),
    )


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


def scores(data: TrainData, answers: np.ndarray, split: str) -> dict[str, Any]:
    """The evaluation's metrics of a candidate's ``answers`` on ``split`` (class
    probabilities, or predictions of the scaled target)."""
    from lepton_desktop.core.training.evaluate import classification_metrics, regression_metrics

    y = data.y[split]
    if data.task == "classification":
        return classification_metrics(y, answers.argmax(1), data.classes or [], answers)
    return regression_metrics(_unscale(data, y), _unscale(data, answers))


def _unscale(data: TrainData, values: np.ndarray) -> np.ndarray:
    return values.astype(np.float64) * data.target_std + data.target_mean


def class_probabilities(estimator: Estimator, x: np.ndarray, n_classes: int) -> np.ndarray:
    """``predict_proba`` with one column per class of the run, classes the training
    rows lacked included (at probability 0)."""
    proba = np.zeros((len(x), n_classes))
    proba[:, np.asarray(estimator.classes_, dtype=int)] = estimator.predict_proba(x)
    return proba


def fit_one(data: Inputs, name: str) -> Fitted:
    """Fit candidate ``name`` on the training rows; its answers on validation and test."""
    began = time.perf_counter()
    x = data.x_train.astype(np.float64, copy=False)  # images travel as float32
    estimator = fit(make_estimator(name, data.task, data.seed), x, data.y_train)
    seconds = time.perf_counter() - began

    def answers(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float64, copy=False)
        if data.task == "classification":
            return class_probabilities(estimator, x, data.n_classes)
        return np.asarray(estimator.predict(x), dtype=np.float64)

    return Fitted(name, seconds, answers(data.x_val), answers(data.x_test))


def fit_strong_baseline(
    data: TrainData,
    network_metrics: dict[str, Any],
    *,
    network_seconds: float = 0.0,
    seed: int = 0,
    reporter: Reporter | None = None,
    beside: BaselineProcess | None = None,
) -> dict[str, Any]:
    """Fit the candidates (or collect them from ``beside``, the process that fitted
    them while the network trained), keep the best on validation, score it on test.

    Returns:
        ``{name, metrics, fit_seconds, selected_on, candidates: {name: {validation,
        fit_seconds}}, skipped: [names], gain: {metric, value}, stage_seconds}``
        (``stage_seconds``: the wall time this call took, imports or the wait for the
        process beside included; ``fit_seconds``: the fits alone): ``metrics`` as
        the evaluation's ``test``; ``gain`` is the network's headline minus the
        baseline's (for an error like MSE, the baseline's minus the network's), so a
        positive gain means the network wins.

    Raises:
        ValueError, ArithmeticError, MemoryError: a candidate could not be fitted (one
            class left in the training rows, say).
        BaselineUnavailable: the process beside ended before any result.
    """
    stage = time.perf_counter()
    reporter = reporter or NullReporter()
    budget = max(MIN_BUDGET_SECONDS, BUDGET_SHARE * network_seconds)
    if beside is None:
        names = candidate_names(data.task, data.task != "forecasting" and data.x["train"].ndim > 2)
        fitted = _fit_here(inputs(data, seed), names, budget, reporter)
    else:
        names = beside.names
        fitted = beside.collect(budget, reporter)
    key, higher = HEADLINE[data.task]
    tried = {
        f.name: {"validation": scores(data, f.val, "val")[key], "fit_seconds": f.fit_seconds}
        for f in fitted
    }
    pick = max if higher else min
    best = pick(tried, key=lambda n: tried[n]["validation"])
    metrics = scores(data, next(f.test for f in fitted if f.name == best), "test")
    difference = network_metrics[key] - metrics[key]
    return {
        "name": best,
        "metrics": metrics,
        "fit_seconds": sum(c["fit_seconds"] for c in tried.values()),
        "selected_on": "validation" if len(tried) > 1 else None,
        "candidates": tried,
        "skipped": [n for n in names if n not in tried],
        "gain": {"metric": key, "value": float(difference if higher else -difference)},
        "stage_seconds": time.perf_counter() - stage,
    }


def _fit_here(
    data: Inputs, names: list[str], budget: float, reporter: Reporter
) -> list[Fitted]:
    """Fit the candidates in this process, cheapest first, until the budget is spent."""
    started = time.perf_counter()
    fitted: list[Fitted] = []
    for index, name in enumerate(names):
        if fitted and time.perf_counter() - started > budget:
            break
        reporter.update(index, len(names), f"strong baseline: fitting {name}")
        fitted.append(fit_one(data, name))
    return fitted


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


# -- the process beside the network ------------------------------------------------------

_warm: BaselineProcess | None = None


def scikit_learn_loaded() -> bool:
    """Whether this process has imported the estimators already (fitting here is free)."""
    return "sklearn.ensemble" in sys.modules and "sklearn.linear_model" in sys.modules


def prewarm() -> None:
    """Start the process beside now, before this one imports torch (a no-op where
    scikit-learn is loaded or a warm process waits already)."""
    global _warm
    if _warm is None and not scikit_learn_loaded():
        _warm = BaselineProcess()


def claim() -> BaselineProcess | None:
    """The warm process (started now if none was): the caller's to :meth:`~BaselineProcess.
    close`; None where scikit-learn is loaded here and fitting here costs nothing extra."""
    global _warm
    process, _warm = _warm, None
    if process is None or not process.alive():
        if process is not None:
            process.close()
        process = None if scikit_learn_loaded() else BaselineProcess()
    return process


def discard_warm() -> None:
    """Stop a warm process nobody will use (a run without a strong baseline)."""
    global _warm
    process, _warm = _warm, None
    if process is not None:
        process.close()


class BaselineProcess:
    """A low-priority child process (``lepton-desktop worker strong-baseline``, started
    like every worker: :mod:`~lepton_desktop.core.system.launch`) that imports
    scikit-learn at once, then fits the candidates on the arrays it is sent while this
    process trains its network.

    Arrays travel as ``.npz`` frames over the child's stdin and stdout, read with
    ``allow_pickle=False`` both ways. The child stops with its parent (the worker
    command's lifeline) and :meth:`close` ends it for good.
    """

    def __init__(self) -> None:
        from lepton_desktop.core.system import launch

        self._process = subprocess.Popen(
            [*launch.cli_argv(), "worker", STRONG_BASELINE_KIND],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=launch.worker_cwd(),
            env=launch.worker_env(),
        )
        self._frames: queue.Queue[tuple[dict[str, Any], dict[str, np.ndarray]] | None]
        self._frames = queue.Queue()
        threading.Thread(target=self._read, name="strong-baseline-read", daemon=True).start()
        self.names: list[str] = []
        self.started = time.perf_counter()

    def alive(self) -> bool:
        """Whether the child still runs."""
        return self._process.poll() is None

    def send(self, data: Inputs) -> None:
        """Hand the child its arrays and return at once: it may still be importing, and
        a pipe takes only a few kilobytes before a reader comes."""
        self.names = candidate_names(data.task, data.images)
        self.started = time.perf_counter()
        meta = {"task": data.task, "images": data.images, "n_classes": data.n_classes,
                "seed": data.seed}  # fmt: skip
        arrays = {"x_train": data.x_train, "y_train": data.y_train, "x_val": data.x_val,
                  "x_test": data.x_test}  # fmt: skip
        threading.Thread(
            target=self._send, args=(frame(meta, arrays),), name="strong-baseline-send",
            daemon=True,
        ).start()  # fmt: skip

    def _send(self, payload: bytes) -> None:
        stdin = self._process.stdin
        with contextlib.suppress(OSError, ValueError):  # the child is gone: collect() says so
            assert stdin is not None
            stdin.write(payload)
            stdin.close()

    def _read(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        try:
            while (received := read_frame(stdout)) is not None:
                self._frames.put(received)
        except (OSError, ValueError):
            pass  # a torn frame: the child was ended
        finally:
            self._frames.put(None)

    def collect(self, budget: float, reporter: Reporter) -> list[Fitted]:
        """The candidates fitted so far and those that finish within ``budget`` seconds
        of :meth:`send` (at least one is waited for); then the child is ended."""
        fitted: list[Fitted] = []
        current = self.names[0] if self.names else ""
        try:
            while len(fitted) < len(self.names):
                if fitted and time.perf_counter() - self.started > budget:
                    break
                reporter.update(
                    len(fitted), len(self.names), f"strong baseline: fitting {current}"
                )
                try:
                    received = self._frames.get(timeout=POLL_S)
                except queue.Empty:
                    continue
                if received is None:
                    if fitted:
                        break
                    raise BaselineUnavailable(
                        "the process fitting the strong baseline ended (exit code "
                        f"{self._process.wait()})"
                    )
                meta, arrays = received
                if meta["kind"] == "fitting":
                    current = meta["name"]
                elif meta["kind"] == "fitted":
                    fitted.append(
                        Fitted(meta["name"], meta["fit_seconds"], arrays["val"], arrays["test"])
                    )
                else:  # failed
                    raise _rebuilt(meta["error"], meta["message"])
        finally:
            self.close()
        return fitted

    def close(self) -> None:
        """End the child (now, whatever it does) and release its pipes."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(2.0)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(2.0)
        for stream in (self._process.stdin, self._process.stdout):
            with contextlib.suppress(OSError, ValueError):
                if stream is not None:
                    stream.close()


def _rebuilt(type_name: str, message: str) -> BaseException:
    """The child's fit error as an exception of the same kind, where it is one of
    :data:`FIT_ERRORS` (ZeroDivisionError is an ArithmeticError); else
    BaselineUnavailable."""
    import builtins

    known = getattr(builtins, type_name, None)
    if isinstance(known, type) and issubclass(known, FIT_ERRORS):
        return known(message)
    return BaselineUnavailable(f"{type_name}: {message}")


def serve_stdio() -> int:
    """The child's side (``worker strong-baseline``): lower its priority, import
    scikit-learn, then fit what stdin brings and answer on stdout. Exit status 0."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print must not tear a frame
    processes.lower_process_priority()  # yield the CPU to the training process
    make_estimator("HistGradientBoosting", "classification", 0)  # the import, early
    received = read_frame(sys.stdin.buffer)
    if received is None:
        return 0  # the parent needed no baseline after all
    meta, arrays = received
    data = Inputs(
        task=meta["task"], images=meta["images"], n_classes=meta["n_classes"],
        seed=meta["seed"], x_train=arrays["x_train"], y_train=arrays["y_train"],
        x_val=arrays["x_val"], x_test=arrays["x_test"],
    )  # fmt: skip
    try:
        for name in candidate_names(data.task, data.images):
            out.write(frame({"kind": "fitting", "name": name}, {}))
            out.flush()
            done = fit_one(data, name)
            out.write(
                frame(
                    {"kind": "fitted", "name": name, "fit_seconds": done.fit_seconds},
                    {"val": done.val, "test": done.test},
                )
            )
            out.flush()
    except Exception as exc:  # the parent decides what it means
        out.write(frame({"kind": "failed", "error": type(exc).__name__, "message": str(exc)}, {}))
        out.flush()
    return 0


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
