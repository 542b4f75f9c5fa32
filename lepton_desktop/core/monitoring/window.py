"""A stretch of time to monitor: the last 15 minutes, an hour, ..., everything, a range."""

from __future__ import annotations

import dataclasses
import math
import re
import time

from lepton_desktop.core.errors import InvalidOptionError

#: The windows offered by name, in seconds (``all``: everything logged).
NAMED = {"15m": 15 * 60, "1h": 3600, "24h": 24 * 3600, "7d": 7 * 24 * 3600, "all": math.inf}
_SPAN = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: Charts get about this many bins at most, whatever the window's length.
MAX_BINS = 240


@dataclasses.dataclass(frozen=True)
class Window:
    """``[since, until)`` in Unix seconds; ``since`` ``None`` means from the first request.

    Attributes:
        since: start, or ``None`` for everything logged.
        until: end (exclusive).
        label: how the user named it (``1h``, ``all``, ``range``).
    """

    since: float | None
    until: float
    label: str

    @property
    def seconds(self) -> float | None:
        """Its length (``None`` while it starts at the first request)."""
        return None if self.since is None else self.until - self.since


def parse(text: str, now: float | None = None) -> Window:
    """``15m``, ``1h``, ``24h``, ``7d``, ``all``, or any ``N[smhdw]`` ending now.

    Raises:
        InvalidOptionError: naming the text and what is accepted.
    """
    now = time.time() if now is None else now
    key = text.strip().lower()
    if key == "all":
        return Window(None, now, "all")
    match = _SPAN.match(key)
    span = float(match.group(1)) * _UNIT_S[match.group(2)] if match else math.nan
    if not (0 < span <= 10 * 365 * 86400):
        raise InvalidOptionError(
            f"--since {text!r}: give a span such as 15m, 1h, 24h, 7d (at most 10 years) or all"
        )
    return Window(now - span, now, key)


def span_seconds(text: str, flag: str) -> float:
    """``N[smhdw]`` (or plain seconds) -> seconds, for ``flag``.

    Raises:
        InvalidOptionError: naming ``flag`` and the text.
    """
    key = text.strip().lower()
    match = _SPAN.match(key)
    try:
        seconds = float(match.group(1)) * _UNIT_S[match.group(2)] if match else float(key)
    except ValueError:
        seconds = math.nan
    if not (0 <= seconds <= 365 * 86400):
        raise InvalidOptionError(f"{flag} {text!r}: give a span such as 30s, 5m or 1h")
    return seconds


def between(since: float, until: float) -> Window:
    """A range chosen on a chart (``since < until``).

    Raises:
        InvalidOptionError: for an empty or reversed range.
    """
    if not (math.isfinite(since) and math.isfinite(until) and since < until):
        raise InvalidOptionError(f"the range {since!r} .. {until!r} is empty or reversed")
    return Window(since, until, "range")


def minutes(window: Window, first_logged: int) -> tuple[int, int, int]:
    """``(first_minute, last_minute, bin_minutes)`` covering the window.

    A window that starts before the first request starts there, and the bins are as
    wide as needed to keep about :data:`MAX_BINS` of them.
    """
    last = int(window.until // 60)
    first = first_logged if window.since is None else max(int(window.since // 60), first_logged)
    first = min(first, last)
    bin_minutes = max(1, math.ceil((last - first + 1) / MAX_BINS))
    return first, last, bin_minutes
