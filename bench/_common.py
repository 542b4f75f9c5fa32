"""Helpers shared by the bench scripts: child processes, peak memory, result tables.

Every method a bench compares runs in its own fresh interpreter, so its peak
resident memory (``ru_maxrss`` of that process) belongs to it alone and no method
warms a cache or an allocator for the next one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
#: A child prints its result on one stdout line that starts with this marker.
RESULT_MARKER = "BENCH-RESULT "


@dataclasses.dataclass(frozen=True)
class Measurement:
    """What one method achieved in its own process.

    Attributes:
        method: the method's label in the table.
        seconds: wall-clock time of the measured work only (imports excluded).
        rows: rows found in the written table afterwards (counted, not assumed).
        peak_rss_mb: the child's peak resident set size, in MiB.
        note: how the method was run (settings worth knowing).
        cpu_seconds: CPU time (user + system, all threads) of the same work; on a
            shared machine it moves far less than wall time does.
    """

    method: str
    seconds: float
    rows: int
    peak_rss_mb: float
    note: str = ""
    cpu_seconds: float = 0.0

    @property
    def rows_per_s(self) -> float:
        """Throughput; 0 for a run that took no measurable time."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0


class Stopwatch:
    """Wall-clock and CPU time of a ``with`` block (CPU: this process, all threads).

    Attributes:
        seconds: wall-clock seconds, set when the block ends.
        cpu_seconds: user + system CPU seconds, set when the block ends.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self._wall = 0.0
        self._cpu = 0.0

    def __enter__(self) -> Stopwatch:
        self._wall = time.perf_counter()
        self._cpu = _cpu_now()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._wall
        self.cpu_seconds = _cpu_now() - self._cpu


def _cpu_now() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # macOS reports bytes, Linux KiB.
    return kib / (1024 * 1024) if sys.platform == "darwin" else kib / 1024


def emit_result(payload: dict[str, Any]) -> None:
    """Print a child's result where :func:`run_child` will find it."""
    sys.stdout.write(RESULT_MARKER + json.dumps(payload) + "\n")
    sys.stdout.flush()


def run_child(module: str, args: Sequence[str], timeout_s: float = 3600) -> dict[str, Any]:
    """Run ``python -m module *args`` in a fresh interpreter and return its result.

    Raises:
        RuntimeError: the child failed or printed no result; its stderr is included.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s, check=False,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return dict(json.loads(line[len(RESULT_MARKER):]))
    raise RuntimeError(
        f"{module} {' '.join(args)} exited {proc.returncode} without a result:\n"
        f"{proc.stderr[-4000:]}"
    )


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table (numbers right-aligned by the caller's text)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def machine_line() -> str:
    """One line describing where the numbers were measured."""
    import platform

    import psutil

    mem_gb = psutil.virtual_memory().total / 1024**3
    return (
        f"{platform.python_implementation()} {platform.python_version()} on "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, {mem_gb:.0f} GB RAM"
    )
