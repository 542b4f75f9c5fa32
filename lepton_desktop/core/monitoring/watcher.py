"""What a running server does for monitoring besides logging: check alerts, publish
gauges, apply the request log's retention.

:class:`MonitorWatcher` is a daemon thread of the serving process (the supervisor's,
never a process that answers requests). Every :data:`CHECK_S` seconds it evaluates
the project's alert rules (:func:`~lepton_desktop.core.monitoring.alerts.check`: fire,
resolve, webhooks, rollbacks) and sets Prometheus gauges, so ``/metrics`` carries the
alert states and each model's live quality, and a Prometheus server can alert on them
too; and it deletes the requests the project's retention setting no longer keeps.
With several server processes the gauges live in the shared multiprocess folder
(``mostrecent``), which every process's ``/metrics`` reads.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from lepton_desktop.core import processes
from lepton_desktop.core.context import ProjectContext
from lepton_desktop.core.monitoring import alerts, quality, window
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

        processes.lower_thread_priority(10)  # never ahead of the server's answers
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
