"""How much memory work may take, checked before it allocates (issue 10, defect 5).

A model is sized by numbers a user or a file controls (``--hidden 1000000000``, a
bundle's ``model.json``): building it first and seeing whether the allocation fails
ends in a process killed by the kernel, or a machine swapping to a halt. Work that
sizes itself asks :func:`check_fits` first, with its own estimate.
"""

from __future__ import annotations

import psutil

from lepton_desktop.core.errors import InvalidOptionError

#: Share of the memory available now that one piece of work may plan to use: the
#: estimates are close but not exact, and the GUI, other jobs and the OS need room.
SAFETY_FACTOR = 0.75


def available_bytes() -> int:
    """Memory the system can give now without swapping (psutil's ``available``)."""
    return int(psutil.virtual_memory().available)


def memory_limit() -> int:
    """What one piece of work may plan to use: :data:`SAFETY_FACTOR` of what is free."""
    return int(available_bytes() * SAFETY_FACTOR)


def check_fits(needed: int, what: str, advice: str) -> None:
    """Refuse work whose estimate ``needed`` (bytes) exceeds :func:`memory_limit`.

    Args:
        needed: the estimate, in bytes.
        what: what needs it, e.g. ``"this MLP (2,500,000,000 parameters)"``.
        advice: how to make it fit, e.g. ``"use smaller --hidden sizes"``.

    Raises:
        InvalidOptionError: naming the size, the limit and the advice.
    """
    free = available_bytes()
    limit = int(free * SAFETY_FACTOR)
    if needed > limit:
        raise InvalidOptionError(
            f"{what} needs about {format_bytes(needed)} of memory, more than the "
            f"{format_bytes(limit)} this machine can give it ({SAFETY_FACTOR:.0%} of the "
            f"{format_bytes(free)} available now); {advice}"
        )


def format_bytes(size: float) -> str:
    """``1.5 GB``, ``320 MB``, ``12 KB`` (powers of 1024, as memory is counted)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(size) < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit in ("B", "KB") else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"  # (unreachable; keeps type checkers content)
