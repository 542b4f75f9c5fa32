"""A project with a request log of two deployments, written as the server's log writer
writes it (the store's ``add_requests``), for the tests of listing and searching it.

Deployment 1 (stopped, an hour ago) served ``iris-mlp``: three answers and one 400.
Deployment 2 (running) serves ``diabetes-mlp``: two answers and one 504.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

OLD, NEW = 1, 2
MISSING = "record 0: missing feature 'petal_width'"
TIMEOUT = "no answer within 30 s (timeout)"


def _row(deployment_id: int, request_id: str, ts: float, **fields: Any) -> dict[str, Any]:
    return {
        "deployment_id": deployment_id, "ts": ts, "request_id": request_id, "method": "POST",
        "path": "/predict", "protocol": "predict", "status": 200, "latency_ms": 1.25,
        "n_rows": 1,
    } | fields  # fmt: skip


def request_rows(now: float) -> list[dict[str, Any]]:
    """The log, oldest first."""
    iris = {"model": "iris-mlp", "version": 1, "outputs": [{"label": "setosa"}]}
    diabetes = {"model": "diabetes-mlp", "version": 1, "outputs": [{"value": 151.2}]}
    old = now - 3600
    return [
        _row(OLD, "iris-a", old, inputs=[{"sepal_length": 5.1}], **iris),
        _row(OLD, "iris-b", old + 1, inputs=[{"sepal_length": 6.3}], **iris),
        _row(OLD, "iris-bad", old + 2, status=400, error=MISSING, n_rows=0,
             inputs=[{"sepal_length": 5.0}], model="iris-mlp", version=1),
        _row(OLD, "iris-c", old + 3, inputs=[{"sepal_length": 7.7}], **iris),
        _row(NEW, "diab-a", now - 3, inputs=[{"age": 59, "bmi": 32.1}], **diabetes),
        _row(NEW, "diab-slow", now - 2, status=504, error=TIMEOUT, n_rows=0,
             inputs=[{"age": 48, "bmi": 21.6}], model="diabetes-mlp", version=1),
        _row(NEW, "diab-b", now - 1, inputs=[{"age": 72, "bmi": 30.5}], **diabetes),
    ]  # fmt: skip


def logged_project(path: Path) -> Path:
    """Create ``path``: a project whose two deployments logged :func:`request_rows`."""
    from lepton_desktop.core.project import Project
    from lepton_desktop.core.store import serving as serving_store

    now = time.time()
    with Project.create(path) as project:
        conn = project.conn
        for number, (status, models, port) in enumerate(
            [("stopped", ["iris-mlp"], 8765), ("running", ["diabetes-mlp"], 8766)], 1
        ):
            deployment_id = serving_store.create_deployment(
                conn, host="127.0.0.1", port=port, token=None, models=models, options={}
            )
            assert deployment_id == number
            started = now - 3700 if number == OLD else now - 60
            serving_store.update_deployment(
                conn, deployment_id, status=status, url=f"http://127.0.0.1:{port}",
                started_at=started, stopped_at=now - 3500 if number == OLD else None,
            )  # fmt: skip
        serving_store.add_requests(conn, request_rows(now))
    return path
