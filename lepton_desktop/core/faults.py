"""Kill points: a process SIGKILLs itself at a named point of its work (tests only).

The fault suite (``tests/faults``) proves that a job killed anywhere leaves a sound
project: it sets ``LEPTON_KILL_AT`` for one command and checks the file afterwards.
Without the variable every :func:`kill_point` is a no-op costing one comparison, so
the points can sit on hot paths (every transaction, every metric flush).

``LEPTON_KILL_AT`` is ``POINT[@N][:ROLE]``:

- ``POINT`` one of :data:`POINTS`;
- ``N`` the hit that kills (default 1: the first time the process reaches the point);
- ``ROLE`` only a process of this role dies: ``main`` (a command run in the
  foreground), or the job kind of a ``worker`` process (``trial``, ``train``, ...);
  without it, any process that inherits the variable may die there.
"""

from __future__ import annotations

import os
import signal
import threading

#: The variable that arms a kill point.
ENV = "LEPTON_KILL_AT"
#: The points the code marks, in the order a job meets them.
POINTS = frozenset(
    {
        "after-queue",  # a job row is committed; nobody has claimed it yet
        "after-claim",  # a worker has claimed its job; no work done yet
        "mid-transaction",  # inside a write transaction, before its COMMIT
        "mid-flush",  # training metrics committed, the checkpoint not yet
        "after-register",  # a model version is committed; the run is not finished
        "after-rows",  # a batch of a dataset version's rows is committed
        "trial-epoch",  # a tuning trial finished an epoch
        "serving",  # the server answers requests; its deployment is recorded
    }
)


class _Armed:
    """The parsed ``LEPTON_KILL_AT`` of this process, with its hit counter."""

    def __init__(self, spec: str) -> None:
        point, _, role = spec.partition(":")
        name, _, count = point.partition("@")
        if name not in POINTS:
            raise ValueError(f"{ENV}={spec!r}: no kill point {name!r} (known: {sorted(POINTS)})")
        self.name = name
        self.hit = int(count) if count else 1
        self.role = role or None
        self.hits = 0
        self.lock = threading.Lock()


def _arm(spec: str | None) -> _Armed | None:
    return _Armed(spec) if spec else None


_ARMED = _arm(os.environ.get(ENV))
_role = "main"


def set_role(role: str) -> None:
    """Name this process's role (a worker's job kind) for ``LEPTON_KILL_AT``'s ``:ROLE``."""
    global _role
    _role = role


def kill_point(name: str) -> None:
    """SIGKILL this process if ``LEPTON_KILL_AT`` names this point (and hit); else nothing."""
    if _ARMED is None or _ARMED.name != name:
        return
    if _ARMED.role is not None and _ARMED.role != _role:
        return
    with _ARMED.lock:
        _ARMED.hits += 1
        if _ARMED.hits != _ARMED.hit:
            return
    # SIGKILL: no handler, no finally block, no atexit: a power cut as far as the
    # project file is concerned. (Windows has no SIGKILL; SIGTERM terminates at once.)
    os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
