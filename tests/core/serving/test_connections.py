"""The server's open-file limit and its flood-proof logging (no server needed).

The deadlines and the cap themselves are tested against real servers in
tests/faults/test_slow_clients.py.
"""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from lepton_desktop.core.serving.connections import (
    RESERVED_FILES,
    ConnectionLimits,
    ConnectionPolicy,
    RateLimitedLog,
)

ACCEPT_ERROR = "socket.accept() out of system resource\nsocket: <socket fd=6, laddr=('x', 1)>"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _logger(name: str) -> tuple[logging.Logger, list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger(name)
    logger.propagate = False
    logger.handlers = [Keep()]
    return logger, records


def test_a_flood_of_one_error_is_logged_once_per_interval() -> None:
    clock = Clock()
    logger, records = _logger("test.flood")
    logger.filters = [RateLimitedLog(10.0, clock)]
    for _ in range(5000):  # what a server out of files logs, once per connection
        logger.error(ACCEPT_ERROR, exc_info=(OSError, OSError(24, "Too many open files"), None))
    logger.warning("Invalid HTTP request received.")  # another kind: not held back
    assert len(records) == 2
    clock.now += 10.5
    logger.error(ACCEPT_ERROR)
    assert len(records) == 3
    assert records[-1].getMessage().endswith("(4999 more like it in the last 10 s)")
    logger.error(ACCEPT_ERROR)
    assert len(records) == 3


def test_the_cap_stays_below_the_open_file_limit() -> None:
    limits = ConnectionLimits(max_connections=5000)
    assert ConnectionPolicy(limits, open_files=1024).cap == 1024 - RESERVED_FILES
    assert ConnectionPolicy(limits, open_files=1 << 20).cap == 5000
    assert ConnectionPolicy(limits, open_files=None).cap == 5000


@pytest.mark.skipif(sys.platform == "win32", reason="no RLIMIT_NOFILE on Windows")
def test_the_soft_open_file_limit_is_raised_to_the_hard_one() -> None:
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 512:
        pytest.skip(f"the hard limit ({hard}) leaves nothing to raise to")
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    code = (
        "import resource\n"
        f"resource.setrlimit(resource.RLIMIT_NOFILE, (256, {wanted}))\n"
        "from lepton_desktop.core.serving.connections import raise_open_file_limit\n"
        "print(raise_open_file_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)  # fmt: skip
    assert done.stdout.split() == [str(wanted), str(wanted)]
