"""Logged traffic written the way a server's journal shipper writes it.

``log_traffic`` stores request rows (and feedback) through
:func:`lepton_desktop.core.store.serving.ship_journal`, the function the supervisor
ships journals with, so the triggers keep the rollups exactly as in production. Used
where a real server would only add minutes (GUI widget tests, the 10-million-row bench);
the end-to-end tests drive a real server instead.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np

from lepton_desktop.core.store import serving as serving_store
from lepton_desktop.core.store.db import connect

CLASSES = ("setosa", "versicolor", "virginica")


def log_traffic(
    path: Path, count: int, *, model: str = "iris", version: int = 1, start: float,
    seconds: float, error_share: float = 0.02, feedback_share: float = 0.5, seed: int = 0,
    batch: int = 50_000,
) -> None:  # fmt: skip
    """Log ``count`` one-row classification requests spread over ``seconds`` from ``start``."""
    rng = np.random.default_rng(seed)
    conn = connect(path)
    try:
        for first in range(0, count, batch):
            n = min(batch, count - first)
            ts = start + np.sort(rng.uniform(0, seconds, n))
            status = np.where(rng.random(n) < error_share, 400, 200)
            latency = rng.lognormal(0.0, 0.6, n)
            predicted = rng.integers(0, len(CLASSES), n)
            truth = np.where(rng.random(n) < 0.8, predicted, rng.integers(0, len(CLASSES), n))
            ids = [uuid.uuid4().hex for _ in range(n)]
            requests = [
                (1, float(ts[i]), ids[i], "POST", "/predict", "native", model, version,
                 int(status[i]), float(latency[i]), 1 if status[i] == 200 else 0, None,
                 json.dumps([{"label": CLASSES[predicted[i]]}]) if status[i] == 200 else None,
                 None if status[i] == 200 else "missing feature")
                for i in range(n)
            ]  # fmt: skip
            labelled = np.flatnonzero((status == 200) & (rng.random(n) < feedback_share))
            feedback = [(1, ids[i], float(ts[i]) + 1, json.dumps(CLASSES[truth[i]]), 0)
                        for i in labelled]  # fmt: skip
            serving_store.ship_journal(conn, requests, feedback)
    finally:
        conn.close()
