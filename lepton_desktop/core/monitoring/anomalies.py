"""Anomalies over a window: flagged requests, and latency or error-rate spikes.

Requests are flagged by the log's writer when a row of theirs lies outside the
training range, carries a category training never saw, misses a feature, or is an
outlier by the Mahalanobis distance fitted on the training split
(:mod:`lepton_desktop.core.store.drift_sketch`); here they are counted by kind.

Service spikes are judged against each series' own recent past: a bin's latency p95
(or error rate) is a spike when its robust z-score, (value - median) / (1.4826 x
MAD) of the :data:`HISTORY` bins before it, reaches :data:`Z_SPIKE`, as the
median/MAD outlier rule of Iglewicz and Hoaglin. Quiet bins (few requests or errors)
are never spikes, and the spread is floored so that a flat history does not make
every wobble one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lepton_desktop.core.monitoring.window import Window, minutes
from lepton_desktop.core.store import drift as drift_store
from lepton_desktop.core.store import monitoring as monitoring_store

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext
    from lepton_desktop.core.monitoring.traffic import Series

#: Bins of history each bin is judged against, and the fewest that make a judgement.
HISTORY = 30
MIN_HISTORY = 8
Z_SPIKE = 3.5
#: A bin needs this many requests (latency) or errors (error rate) to be a spike.
MIN_REQUESTS = 5
MIN_ERRORS = 3
#: Spread floors: 5% of the median latency; one percentage point of error rate.
LATENCY_FLOOR = 0.05
ERROR_RATE_FLOOR = 0.01


def report(ctx: ProjectContext, window: Window, model: str | None, version: int | None,
           series: Series) -> dict[str, Any]:  # fmt: skip
    """``monitor --json``'s ``anomalies``: flagged requests by kind and service spikes."""
    first_logged, _ = monitoring_store.minute_range(ctx.conn, model, version)
    first, last, _ = minutes(window, first_logged if first_logged is not None else
                             int(window.until // 60))  # fmt: skip
    requests, rows, by_kind = drift_store.anomaly_counts(ctx.conn, model, version, first, last)
    spikes = service_spikes(series)
    return {"requests_flagged": requests, "rows_flagged": rows, "by_kind": by_kind,
            "latency_spikes": spikes["latency"], "error_spikes": spikes["errors"]}  # fmt: skip


def service_spikes(series: Series) -> dict[str, list[dict[str, float]]]:
    """Spikes of latency p95 and of error rate: ``[{start, value, baseline, z}]`` each."""
    requests = series.requests
    errors = series.errors_4xx + series.errors_5xx
    rate = np.divide(errors, requests, out=np.full(len(requests), np.nan), where=requests > 0)
    latency = np.where(requests >= MIN_REQUESTS, series.latency_ms[95], np.nan)
    return {
        "latency": _spikes(series.start, latency, lambda median: LATENCY_FLOOR * median),
        "errors": _spikes(series.start, np.where(errors >= MIN_ERRORS, rate, np.nan),
                          lambda median: np.full_like(median, ERROR_RATE_FLOOR),
                          history=rate),
    }  # fmt: skip


def robust_z(values: np.ndarray, floor: Any, history: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Each bin's robust z-score against the bins before it, and that median (NaN where
    the history is too short)."""
    past = values if history is None else history
    n = len(values)
    z, medians = np.full(n, np.nan), np.full(n, np.nan)
    for i in range(n):
        earlier = past[max(0, i - HISTORY) : i]
        earlier = earlier[np.isfinite(earlier)]
        if len(earlier) < MIN_HISTORY or not np.isfinite(values[i]):
            continue
        median = float(np.median(earlier))
        spread = max(1.4826 * float(np.median(np.abs(earlier - median))),
                     float(floor(np.array(median))), 1e-12)  # fmt: skip
        medians[i], z[i] = median, (values[i] - median) / spread
    return z, medians


def _spikes(start: np.ndarray, values: np.ndarray, floor: Any,
            history: np.ndarray | None = None) -> list[dict[str, float]]:  # fmt: skip
    z, medians = robust_z(values, floor, history)
    hit = np.flatnonzero(np.nan_to_num(z, nan=-np.inf) >= Z_SPIKE)
    return [{"start": float(start[i]), "value": float(values[i]),
             "baseline": float(medians[i]), "z": float(z[i])} for i in hit]  # fmt: skip
