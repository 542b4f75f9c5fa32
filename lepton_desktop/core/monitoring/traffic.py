"""Requests, errors, latency, versions and predictions over a window, from the rollups.

Everything here is arithmetic on arrays built from at most bins x buckets rollup rows
(:mod:`lepton_desktop.core.store.monitoring`), never a loop over logged requests, so
the numbers come back in milliseconds whether the log holds a thousand requests or ten
million. Latency percentiles come from a histogram with buckets 19% wide (interpolated
geometrically inside the bucket), as Prometheus' ``histogram_quantile`` does: within
about 9% of the exact value.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from lepton_desktop.core.monitoring.window import Window, minutes
from lepton_desktop.core.store import monitoring as store

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext

PERCENTILES = (50, 95, 99)
#: Windows longer than this are drawn in bins of whole hours, read from the hourly
#: rollups (7 days: 168 bins of an hour instead of 240 of 42 minutes).
HOURLY_AFTER_MINUTES = 2 * 24 * 60


@dataclasses.dataclass(frozen=True)
class Series:
    """Traffic per bin of minutes (arrays of one length, one entry per bin).

    Attributes:
        start: each bin's start, Unix seconds.
        bin_seconds: the width of a bin.
        seconds: each bin's length up to the window's end (the last bin may still be
            filling: rates divide by the time it has had, not by the full width).
        requests, rows, errors_4xx, errors_5xx: counts per bin.
        latency_ms: ``{50: array, 95: array, 99: array}`` (NaN where a bin is empty).
        versions: ``{"model:version": requests per bin}``: which version answered.
        classes: ``{label: share of the bin's answered rows}`` (classification).
        value_mean, value_min, value_max: predicted values per bin (regression;
            empty arrays for classification).
    """

    start: np.ndarray
    bin_seconds: int
    seconds: np.ndarray
    requests: np.ndarray
    rows: np.ndarray
    errors_4xx: np.ndarray
    errors_5xx: np.ndarray
    latency_ms: dict[int, np.ndarray]
    versions: dict[str, np.ndarray]
    classes: dict[str, np.ndarray]
    value_mean: np.ndarray
    value_min: np.ndarray
    value_max: np.ndarray

    def per_second(self, counts: np.ndarray) -> np.ndarray:
        """``counts`` per bin as a rate."""
        return counts / self.seconds


@dataclasses.dataclass(frozen=True)
class Summary:
    """One window's totals, as ``monitor --json`` prints them.

    Attributes:
        requests: requests answered (any status).
        errors: ``{"4xx": n, "5xx": n}``.
        error_rate: share of requests with a status of 400 or more.
        rows: rows predicted (answers with a status below 400).
        requests_per_s: requests over ``seconds``.
        latency_ms: ``{"p50", "p95", "p99", "mean"}`` (``None`` without requests).
        versions: requests per ``model:version``.
        predictions: classification: ``{label: share}``; regression:
            ``{"mean", "std", "min", "max"}`` of the predicted values.
        seconds: the time counted: from the window's start, or from the minute of the
            first request when that is later, to the window's end.
    """

    requests: int
    errors: dict[str, int]
    error_rate: float
    rows: int
    requests_per_s: float
    latency_ms: dict[str, float | None]
    versions: dict[str, int]
    predictions: dict[str, float]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Traffic:
    """One read of a window: its series for charts and its totals."""

    series: Series
    summary: Summary


def read(ctx: ProjectContext, window: Window, model: str | None = None,
         version: int | None = None) -> Traffic:  # fmt: skip
    """Traffic of ``model`` (every model: ``None``) and ``version`` over ``window``.

    One grouped read of the request rollups and one of the prediction rollups; the
    totals are sums of the bins. Bins of an hour or more read the hourly rollups.
    """
    first, last, width = _span(ctx, window, model, version)
    # Rates count from the window's start, or from the first request when that is later.
    seconds = max(window.until - max(window.since or 0.0, first * 60.0), 1.0)
    if last - first >= HOURLY_AFTER_MINUTES:  # whole hours, the first bin on the hour
        width, first = math.ceil(width / 60) * 60, first - first % 60
    bins = np.arange(first, last + 1, width)
    index = {int(b): i for i, b in enumerate(bins)}
    bounds = np.asarray(store.latency_bounds(ctx.conn))
    rows = store.traffic(ctx.conn, model, version, first, last, width)
    slot = np.fromiter((index[r[0]] for r in rows), int, len(rows))
    names = [f"{r[1]}:{r[2]}" for r in rows]
    table = np.asarray([r[3:] for r in rows], dtype=float).reshape(-1, 5)
    status, bucket, n = table[:, 0].astype(int), table[:, 1].astype(int), table[:, 2]
    histogram = np.zeros((len(bins), len(bounds)))
    np.add.at(histogram, (slot, bucket), n)
    answered = np.where(status < 4, table[:, 3], 0)
    errors = {"4xx": np.where(status == 4, n, 0), "5xx": np.where(status >= 5, n, 0)}
    answers = _answers(ctx, model, version, first, last, width, index)
    start = bins * 60.0
    series = Series(
        start=start,
        bin_seconds=width * 60,
        seconds=np.clip(np.minimum(start + width * 60, window.until) - start, 1.0, None),
        requests=histogram.sum(axis=1),
        rows=_per_bin(len(bins), slot, answered),
        errors_4xx=_per_bin(len(bins), slot, errors["4xx"]),
        errors_5xx=_per_bin(len(bins), slot, errors["5xx"]),
        latency_ms={p: quantiles(histogram, bounds, p / 100) for p in PERCENTILES},
        versions=_versions(names, slot, n, len(bins), model),
        **_prediction_series(answers),
    )
    total = histogram.sum(axis=0, keepdims=True)
    requests = int(n.sum())
    latency: dict[str, float | None] = {
        f"p{p}": _number(quantiles(total, bounds, p / 100)[0]) for p in PERCENTILES
    }
    latency["mean"] = float(table[:, 4].sum() / requests) if requests else None
    error_counts = {k: int(v.sum()) for k, v in errors.items()}
    summary = Summary(
        requests=requests,
        errors=error_counts,
        error_rate=sum(error_counts.values()) / requests if requests else 0.0,
        rows=int(answered.sum()),
        requests_per_s=requests / seconds,
        latency_ms=latency,
        versions={k: int(v.sum()) for k, v in series.versions.items()},
        predictions=_prediction_summary(answers),
        seconds=seconds,
    )
    return Traffic(series, summary)


def series(ctx: ProjectContext, window: Window, model: str | None = None,
           version: int | None = None) -> Series:  # fmt: skip
    """The chart data of :func:`read`."""
    return read(ctx, window, model, version).series


def summary(ctx: ProjectContext, window: Window, model: str | None = None,
            version: int | None = None) -> Summary:  # fmt: skip
    """The totals of :func:`read`."""
    return read(ctx, window, model, version).summary


def served(ctx: ProjectContext) -> list[tuple[str, int]]:
    """``(model, version)`` of everything that ever answered, by name and version."""
    return [(name, version) for name, version, *_ in store.served_models(ctx.conn)]


def quantiles(histogram: np.ndarray, bounds: np.ndarray, q: float) -> np.ndarray:
    """The ``q`` quantile of each row of a bucket histogram (NaN for an empty row).

    Bucket ``i`` holds values in ``(bounds[i-1], bounds[i]]``; inside it the quantile is
    interpolated geometrically (the buckets are geometric).
    """
    totals = histogram.sum(axis=1)
    cumulative = np.cumsum(histogram, axis=1)
    target = q * totals
    bucket = np.minimum((cumulative < target[:, None]).sum(axis=1), len(bounds) - 1)
    rows = np.arange(len(histogram))
    below = np.where(bucket > 0, cumulative[rows, np.maximum(bucket - 1, 0)], 0.0)
    inside = histogram[rows, bucket]
    fraction = np.clip(np.divide(target - below, inside, out=np.ones_like(target),
                                 where=inside > 0), 0.0, 1.0)  # fmt: skip
    upper = bounds[bucket]
    lower = np.where(bucket > 0, bounds[np.maximum(bucket - 1, 0)], bounds[0] / 2 ** 0.25)
    value = lower * (upper / lower) ** fraction
    return np.where(totals > 0, value, np.nan)


def _span(ctx: ProjectContext, window: Window, model: str | None,
          version: int | None) -> tuple[int, int, int]:  # fmt: skip
    first_logged, _ = store.minute_range(ctx.conn, model, version)
    if first_logged is None:
        first_logged = int(window.until // 60)
    return minutes(window, first_logged)


def _per_bin(count: int, slot: np.ndarray, values: np.ndarray) -> np.ndarray:
    totals = np.zeros(count)
    np.add.at(totals, slot, values)
    return totals


def _versions(names: list[str], slot: np.ndarray, n: np.ndarray, count: int,
              model: str | None) -> dict[str, np.ndarray]:  # fmt: skip
    """Requests per ``model:version`` per bin (the unattributed ``:0`` left out)."""
    labels = np.asarray(names, dtype=object)
    out: dict[str, np.ndarray] = {}
    for name in sorted(set(names)):
        if name.startswith(":") and model != "":
            continue
        mine = labels == name
        out[name] = _per_bin(count, slot[mine], n[mine])
    return out


@dataclasses.dataclass
class _Answers:
    """Answered rows per bin: counts per class, or the predicted values' moments."""

    answered: np.ndarray
    classes: dict[str, np.ndarray]
    sums: np.ndarray
    squares: np.ndarray
    low: np.ndarray
    high: np.ndarray


def _answers(ctx: ProjectContext, model: str | None, version: int | None, first: int,
             last: int, width: int, index: dict[int, int]) -> _Answers:  # fmt: skip
    count = len(index)
    out = _Answers(np.zeros(count), {}, np.zeros(count), np.zeros(count),
                   np.full(count, np.nan), np.full(count, np.nan))  # fmt: skip
    for start, label, n, total, square, least, most in store.predictions(
        ctx.conn, model, version, first, last, width
    ):
        i = index[start]
        out.answered[i] += n
        if label:
            out.classes.setdefault(label, np.zeros(count))[i] += n
        else:
            out.sums[i] += total
            out.squares[i] += square
            out.low[i] = np.fmin(out.low[i], np.nan if least is None else least)
            out.high[i] = np.fmax(out.high[i], np.nan if most is None else most)
    return out


def _prediction_series(answers: _Answers) -> dict[str, Any]:
    safe = np.where(answers.answered > 0, answers.answered, 1)
    if answers.classes:
        empty = np.zeros(0)
        shares = {k: np.where(answers.answered > 0, v / safe, np.nan)
                  for k, v in sorted(answers.classes.items())}  # fmt: skip
        return {"classes": shares,
                "value_mean": empty, "value_min": empty, "value_max": empty}  # fmt: skip
    return {
        "classes": {},
        "value_mean": np.where(answers.answered > 0, answers.sums / safe, np.nan),
        "value_min": answers.low,
        "value_max": answers.high,
    }


def _prediction_summary(answers: _Answers) -> dict[str, float]:
    n = float(answers.answered.sum())
    if not n:
        return {}
    if answers.classes:
        return {label: float(c.sum()) / n for label, c in sorted(answers.classes.items())}
    mean = float(answers.sums.sum()) / n
    variance = max(float(answers.squares.sum()) / n - mean * mean, 0.0)
    return {"mean": mean, "std": variance**0.5, "min": float(np.nanmin(answers.low)),
            "max": float(np.nanmax(answers.high))}  # fmt: skip


def _number(value: float) -> float | None:
    return None if np.isnan(value) else float(value)
