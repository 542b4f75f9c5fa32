"""Request rate and latency over the last minutes, computed from the log's increments.

:class:`RequestStats` keeps the time, latency and outcome of the requests of the last
:data:`WINDOW_S` seconds in numpy arrays (appended per poll, pruned as time moves on)
and bins them: requests per second in 1 s bins, p50/p99 latency in
:data:`LATENCY_BIN_S` bins. :class:`ServingCharts` draws them, x in seconds before now.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QHBoxLayout, QWidget

from lepton_desktop.core.entities import RequestRecord
from lepton_desktop.gui.widgets.charts import LineChart

#: How far back the charts look (seconds).
WINDOW_S = 300.0
#: Width of the latency percentile bins (seconds): enough requests per bin for a p99.
LATENCY_BIN_S = 5.0
#: The shortest time span drawn (seconds).
MIN_SPAN_S = 30.0
#: The "now" rate averages over this many seconds.
RATE_SPAN_S = 10.0


class RequestStats:
    """Times, latencies and errors of the recent requests, and their binned series."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self.ts = np.empty(0)
        self.latency = np.empty(0)

    def clear(self) -> None:
        """Forget every request (another deployment)."""
        self.ts = np.empty(0)
        self.latency = np.empty(0)

    def add(self, records: Sequence[RequestRecord]) -> None:
        """Take a batch of newer requests."""
        if not records:
            return
        ts = np.fromiter((r.ts for r in records), float, len(records))
        latency = np.fromiter((r.latency_ms for r in records), float, len(records))
        self.ts = np.concatenate([self.ts, ts])
        self.latency = np.concatenate([self.latency, latency])
        if np.any(np.diff(self.ts[-len(ts) - 1 :]) < 0):
            # Rows come in log order; concurrent requests may be logged out of time order.
            order = np.argsort(self.ts, kind="stable")
            self.ts, self.latency = self.ts[order], self.latency[order]

    def prune(self, now: float) -> None:
        """Drop requests older than the window."""
        keep = np.searchsorted(self.ts, now - self.window_s, side="left")
        if keep:
            self.ts, self.latency = self.ts[keep:], self.latency[keep:]

    def rate(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        """Requests per second in 1 s bins: (seconds before now, rate)."""
        edges = _edges(self.window_s, 1.0)
        counts, _ = np.histogram(self.ts - now, bins=edges)
        return edges[1:], counts.astype(float)

    def latency_percentiles(self, now: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """p50 and p99 latency per bin (NaN where a bin has no request)."""
        edges = _edges(self.window_s, LATENCY_BIN_S)
        bounds = np.searchsorted(self.ts - now, edges, side="right")
        p50 = np.full(len(edges) - 1, np.nan)
        p99 = np.full(len(edges) - 1, np.nan)
        for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
            if hi > lo:
                p50[i], p99[i] = np.percentile(self.latency[lo:hi], [50, 99])
        return edges[1:], p50, p99

    def recent(self, now: float, span_s: float = RATE_SPAN_S) -> tuple[float, float | None]:
        """Requests per second and p50 latency over the last ``span_s`` seconds."""
        lo = np.searchsorted(self.ts, now - span_s)
        window = self.latency[lo:]
        p50 = float(np.percentile(window, 50)) if len(window) else None
        return len(window) / span_s, p50


def _edges(window_s: float, step: float) -> np.ndarray:
    """Bin edges in seconds before now, from ``-window_s`` up to 0 included (relative
    times: an epoch time plus a step of 1e-9 s is the same float)."""
    return np.arange(-window_s, step / 2, step)


class ServingCharts(QWidget):
    """Requests per second and p50/p99 latency over the last minutes."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.stats = RequestStats()
        self.rate_chart = LineChart(self, "Requests / s")
        self.latency_chart = LineChart(self, "Latency (ms)")
        for chart in (self.rate_chart, self.latency_chart):
            chart.setMinimumHeight(190)
            chart.getPlotItem().setLabel("bottom", "seconds ago")
        self.rate_chart.getPlotItem().legend.hide()  # one line: the title names it
        self._legend_backdrop()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.rate_chart)
        layout.addWidget(self.latency_chart)

    def changeEvent(self, event: QEvent) -> None:
        """Follow theme switches (the legend's backdrop)."""
        if event.type() == QEvent.Type.PaletteChange:
            self._legend_backdrop()
        super().changeEvent(event)

    def _legend_backdrop(self) -> None:
        # Lines pass under the legend at the top left: a translucent backdrop keeps both
        # readable.
        base = self.palette().color(QPalette.ColorRole.Base)
        base.setAlpha(200)
        self.latency_chart.getPlotItem().legend.setBrush(pg.mkBrush(base))

    def clear(self) -> None:
        """Forget the requests seen (another deployment)."""
        self.stats.clear()

    def add(self, records: Sequence[RequestRecord]) -> None:
        """Take newer requests (drawn at the next :meth:`redraw`)."""
        self.stats.add(records)

    def redraw(self, now: float, since: float | None = None) -> None:
        """Draw the window ending at ``now`` (time moves on even without requests).

        Args:
            now: the right end (epoch seconds).
            since: when the server started: a server up for less than the window is
                drawn over its own lifetime (at least :data:`MIN_SPAN_S`).
        """
        self.stats.prune(now)
        span = self.stats.window_s if since is None else now - since
        span = min(self.stats.window_s, max(MIN_SPAN_S, span))
        x, rate = self.stats.rate(now)
        keep = x > -span - 1e-9
        self.rate_chart.show_series(x[keep], {"requests/s": rate[keep]}, dates=False)
        lx, p50, p99 = self.stats.latency_percentiles(now)
        keep = lx > -span - LATENCY_BIN_S
        self.latency_chart.show_series(lx[keep], {"p50": p50[keep], "p99": p99[keep]}, dates=False)
