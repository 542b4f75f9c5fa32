"""Prometheus metrics of one server (``GET /metrics``).

Each app has its own registry (several apps may live in one test process). With
several uvicorn worker processes, ``PROMETHEUS_MULTIPROC_DIR`` is set by the parent
and ``/metrics`` adds up every worker's numbers.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024)


class Metrics:
    """Request counts by status, latency, and batch sizes, labelled by model and version."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "lepton_requests",
            "Requests answered, by model, version, protocol and HTTP status.",
            ["model", "version", "protocol", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lepton_request_latency_seconds",
            "Time from the request's arrival to its answer.",
            ["model", "version", "protocol"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "lepton_batch_rows",
            "Rows in one forward pass (dynamic batching).",
            ["model", "version"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.batch_requests = Histogram(
            "lepton_batch_requests",
            "Requests sharing one forward pass (dynamic batching).",
            ["model", "version"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )

        # Labelled children by label values: ``labels(...)`` validates and locks on every
        # call (5 us, four times a request); a dict lookup does the same job here.
        self._children: dict[tuple[Any, ...], tuple[Any, Any]] = {}
        self._batch_children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def observe(
        self, model: str, version: str, protocol: str, status: int, seconds: float
    ) -> None:
        """Count one answered request."""
        key = (model, version, protocol, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(model, version, protocol, str(status)),
                self.latency.labels(model, version, protocol),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_batch(self, model: str, version: str, rows: int, requests: int) -> None:
        """Count one forward pass."""
        key = (model, version)
        children = self._batch_children.get(key)
        if children is None:
            children = (self.batch_rows.labels(*key), self.batch_requests.labels(*key))
            self._batch_children[key] = children
        children[0].observe(rows)
        children[1].observe(requests)

    def render(self) -> bytes:
        """The text exposition format (every worker's sum in multi-process mode)."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            prometheus_multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
