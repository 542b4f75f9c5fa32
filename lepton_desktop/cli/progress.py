"""A progress bar on the terminal for long commands (silent when not a terminal)."""

from __future__ import annotations

import sys
from typing import Any


class TerminalProgress:
    """A Reporter that draws a tqdm bar on stderr when stderr is a terminal.

    Args:
        description: shown before the bar.
        unit: what ``done``/``total`` count ("B" scales as bytes).
    """

    def __init__(self, description: str, unit: str = "B") -> None:
        self._bar: Any = None
        self._description = description
        self._unit = unit
        self._enabled = sys.stderr.isatty()

    def update(self, done: int, total: int | None, message: str = "") -> None:
        """Move the bar to ``done`` of ``total``."""
        if not self._enabled:
            return
        if self._bar is None:
            from tqdm import tqdm  # only for a terminal: a script's run never pays for it

            self._bar = tqdm(
                total=total,
                initial=done,  # a resumed job: the rate counts only this session's work
                desc=self._description,
                unit=self._unit,
                unit_scale=self._unit == "B",  # 1.2MB, but "10/14 trial", not "10.0/14.0"
                file=sys.stderr,
                leave=False,
                dynamic_ncols=True,
            )
        self._bar.total = total
        self._bar.n = done
        if message:
            self._bar.set_postfix_str(message, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        """Remove the bar."""
        if self._bar is not None:
            self._bar.close()
