"""What a running server does for monitoring besides logging: check alerts, publish
gauges, apply the request log's retention.

:class:`MonitorWatcher` is a daemon thread of the serving process (the supervisor's,
never a process that answers requests). Every :data:`CHECK_S` seconds it evaluates
the project's alert rules (:func:`~lepton_desktop.core.monitoring.alerts.check`: fire,
resolve, webhooks, rollbacks) and sets Prometheus gauges, so ``/metrics`` carries the
alert states, each model's live quality (and its CBPE estimate) and the drift of its
inputs (the drifted share, each feature's test statistic and verdict), and a Prometheus
server can alert on them too; and it deletes the requests the project's retention
setting no longer keeps. With several server processes the gauges live in the shared
multiprocess folder (``mostrecent``), which every process's ``/metrics`` reads.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from lepton_desktop.core import processes
from lepton_desktop.core.context import ProjectContext
from lepton_desktop.core.monitoring import alerts, cbpe, drift, quality, window
from lepton_desktop.core.monitoring.report import kind_of

log = logging.getLogger(__name__)
#: Seconds between two checks, and the environment variable that overrides it (tests,
#: or a user who wants alerts sooner).
CHECK_S = 10.0
CHECK_ENV = "LEPTON_MONITOR_CHECK_S"
#: Seconds a round spends at most on the request log's retention.
RETENTION_S = 2.0
#: The window of the live-quality gauges.
QUALITY_WINDOW = "1h"


class MonitorWatcher(threading.Thread):
    """Checks the alert rules of ``path`` and publishes gauges until :meth:`stop`.

    Args:
        path: the project file (the thread opens its own connection).
        interval: seconds between checks.
    """

    def __init__(self, path: Path, interval: float = CHECK_S) -> None:
        super().__init__(name="monitor-watcher", daemon=True)
        self.path = path
        self.interval = interval
        self.checks = 0
        self._stop_event = threading.Event()
        self._gauges: dict[str, Any] = {}

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to end after its current check, and wait for it."""
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        from lepton_desktop.core.store.db import connect

        processes.lower_thread_priority(19)  # never ahead of the server's answers
        conn = connect(self.path)
        ctx = ProjectContext(self.path, conn)
        try:
            while not self._stop_event.is_set():
                self.check_once(ctx)
                self._stop_event.wait(self.interval)
        finally:
            conn.close()

    def check_once(self, ctx: ProjectContext) -> None:
        """One round: alerts, then gauges. A failure is logged; the next round retries."""
        try:
            changes = alerts.check(ctx)
            self._trim_log(ctx)
            for change in changes:
                log.warning("alert %s: %s", change.state, change.message)
            self._publish(ctx)
        except Exception:  # a busy or changing file: never let the server's thread die
            log.exception("monitoring check failed")
        self.checks += 1

    def _trim_log(self, ctx: ProjectContext) -> None:
        """Delete requests the retention setting no longer keeps, a batch per
        transaction and a bounded time per round, so the shipper is never held up."""
        from lepton_desktop.core.monitoring.requests import RequestLog

        deleted = RequestLog(ctx).apply_retention(budget_s=RETENTION_S)
        if deleted:
            log.info("retention: %d old requests deleted from the log", deleted)

    def _publish(self, ctx: ProjectContext) -> None:
        from lepton_desktop.core.store import alerts as alert_store
        from lepton_desktop.core.store import monitoring as monitoring_store

        firing = {e.rule for e in alert_store.events(ctx.conn, firing_only=True)}
        state = self._gauge("lepton_alert_firing", "1 while the alert rule fires.", ["alert"])
        for rule in alert_store.list_rules(ctx.conn):
            state.labels(rule.name).set(1.0 if rule.name in firing else 0.0)
        labelled = self._gauge("lepton_labelled_rows", "Labelled rows, last hour.", ["model"])
        metric = self._gauge(
            "lepton_live_quality", "Live quality from feedback, last hour.", ["model", "metric"]
        )
        span = window.parse(QUALITY_WINDOW)
        for name in sorted({n for n, *_ in monitoring_store.served_models(ctx.conn)}):
            live = quality.live_quality(ctx, span, name, None, kind_of(ctx, name))
            labelled.labels(name).set(live.labelled)
            for key, value in live.metrics.items():
                if value is not None:
                    metric.labels(name, key).set(value)
            if live.kind == "classification":
                self._publish_estimate(ctx, span, name)
            self._publish_drift(ctx, span, name)

    def _publish_estimate(self, ctx: ProjectContext, span: window.Window, model: str) -> None:
        """CBPE's estimated accuracy and F1 from the last hour's answered rows."""
        found = cbpe.estimated_quality(ctx, span, model, None, build_missing=True)
        gauge = self._gauge("lepton_estimated_quality",
                            "Quality estimated from the model's probabilities (CBPE), last hour.",
                            ["model", "metric"])  # fmt: skip
        for key, value in found["metrics"].items():
            if value is not None:
                gauge.labels(model, key).set(value)

    def _publish_drift(self, ctx: ProjectContext, span: window.Window, model: str) -> None:
        """Drift gauges of ``model``: the drifted share of its input features, and per
        feature (the predictions too, as ``prediction``) its test's number and verdict."""
        found = drift.evaluate(ctx, span, model, None)
        if not found.features:  # no reference (no training data): nothing to say
            return
        self._gauge(
            "lepton_drift_share", "Share of features drifted, last hour.", ["model"]
        ).labels(model).set(found.share)
        statistic = self._gauge(
            "lepton_feature_drift",
            "A feature's drift statistic (its test's p-value or distance), last hour.",
            ["model", "feature", "test"],
        )
        drifted = self._gauge(
            "lepton_feature_drifted", "1 while the feature drifted, last hour.",
            ["model", "feature"],
        )  # fmt: skip
        for feature in found.features:
            if feature.test is None:
                continue
            # A p-value test's verdict is read from its p-value (Evidently's rule), so
            # that is the number published; distances are published as they are.
            value = feature.p_value if feature.p_value is not None else feature.statistic
            if value is not None:
                statistic.labels(model, feature.feature, feature.test).set(value)
            drifted.labels(model, feature.feature).set(1.0 if feature.drifted else 0.0)

    def _gauge(self, name: str, text: str, labels: list[str]) -> Any:
        import os

        from prometheus_client import Gauge, values

        shared = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if shared and values.ValueClass.__name__ == "MutexValue":
            # prometheus_client picks its value store once, when first imported; if that
            # was before the server set the shared folder, pick again so the gauges go
            # where every server process's /metrics reads them.
            values.ValueClass = values.get_value_class()
        if name not in self._gauges:
            self._gauges[name] = Gauge(name, text, labels, registry=None,
                                       multiprocess_mode="mostrecent")  # fmt: skip
        return self._gauges[name]


def wait_for_checks(watcher: MonitorWatcher, count: int, timeout: float = 30.0) -> bool:
    """Wait until ``watcher`` has run ``count`` checks (tests and the CLI's ``--once``)."""
    deadline = time.monotonic() + timeout
    while watcher.checks < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return watcher.checks >= count
