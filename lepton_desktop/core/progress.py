"""How long work reports progress and learns that it should stop.

Long operations take a :class:`Reporter`. The CLI passes one that draws a terminal
progress bar, a worker passes one that writes the job row, tests pass
:class:`NullReporter`. ``update`` raises :class:`CancelledError` when the user asked
to stop, so cancelling is cooperative and happens between batches.
"""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    """Receives progress; raises CancelledError from ``update`` to stop the work."""

    def update(self, done: int, total: int | None, message: str = "") -> None:
        """Record that ``done`` of ``total`` units are finished."""


class NullReporter:
    """Ignores progress and never cancels."""

    def update(self, done: int, total: int | None, message: str = "") -> None:
        """Do nothing."""
