"""Recording a run while it trains: metrics, system samples, checkpoints, pause/stop.

The training thread only appends to a list (cheap, no I/O). A writer thread with its
own connection flushes everything about every half second in one transaction, samples
system metrics about once a second, and reads the run's pause/stop request, which the
training thread then sees as a plain attribute.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lepton_desktop.core.faults import kill_point
from lepton_desktop.core.store import runs as run_store
from lepton_desktop.core.store.db import connect
from lepton_desktop.core.system.sampler import SystemSampler

FLUSH_EVERY_S = 0.5
SAMPLE_EVERY_S = 1.0
PAUSE_POLL_S = 0.25


class RunTracker:
    """The :class:`~lepton_desktop.core.training.loop.Hooks` of a run stored in a project.

    Args:
        path: the project file.
        run_id: the run.
        gpu_index: CUDA device to sample, or None.
        on_epoch: called (on the training thread) after each epoch with its metrics.
    """

    def __init__(
        self,
        path: Path,
        run_id: int,
        gpu_index: int | None = None,
        on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    ) -> None:
        self.run_id = run_id
        self._path = path
        # deques: append and popleft are atomic, so the training thread never locks.
        self._steps: deque[tuple[int, int, torch.Tensor, float]] = deque()
        self._rows: deque[tuple[int, str, int, int, float | None, float]] = deque()
        self._system: deque[tuple[int, float, float, float, float | None, float | None]] = deque()
        self._writes: deque[Callable[[Any], None]] = deque()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._control: str | None = None
        self._sampler = SystemSampler(gpu_index)
        self._on_epoch = on_epoch
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"tracker-{run_id}", daemon=True)
        self._thread.start()

    # -- hooks (training thread) -------------------------------------------------------

    def step(self, step: int, epoch: int, loss: torch.Tensor) -> None:
        """Queue a step's loss (converted to a float later, in the writer)."""
        self._steps.append((step, epoch, loss, time.time()))

    def epoch(self, epoch: int, metrics: dict[str, float], best: bool) -> None:
        """Queue the epoch's metrics and the run's progress."""
        now = time.time()
        self._rows.extend((self.run_id, k, 0, epoch, v, now) for k, v in metrics.items())
        fields: dict[str, Any] = {"epochs_done": epoch}
        if best:
            fields |= {
                "best_epoch": epoch,
                "best_value": metrics["val_loss"],
                "monitor": "val_loss",
            }
        self._writes.append(lambda conn: run_store.update(conn, self.run_id, **fields))
        if self._on_epoch is not None:
            self._on_epoch(epoch, metrics)

    def checkpoint(self, kind: str, epoch: int, state: bytes) -> None:
        """Queue a checkpoint write."""
        self._writes.append(
            lambda conn: run_store.save_checkpoint(conn, self.run_id, kind, epoch, state)
        )

    def control(self) -> str | None:
        """``stop``, or None; while paused, waits here until resumed or stopped."""
        if self._error is not None:
            raise self._error
        if self._control != "pause":
            return self._control
        self.flush()
        with contextlib.closing(connect(self._path)) as conn:
            run_store.update(conn, self.run_id, status="paused")
            while (request := run_store.control(conn, self.run_id)) == "pause":
                time.sleep(PAUSE_POLL_S)
            run_store.update(conn, self.run_id, status="running")
        self._control = request
        return request

    # -- writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        conn = connect(self._path)
        last_sample = 0.0
        try:
            while not self._stop.wait(FLUSH_EVERY_S):
                if time.monotonic() - last_sample >= SAMPLE_EVERY_S:
                    last_sample = time.monotonic()
                    self._sample()
                self._flush(conn)
                self._control = run_store.control(conn, self.run_id)
            self._sample()
            self._flush(conn)
        except BaseException as exc:  # surfaced on the training thread by control()
            self._error = exc
        finally:
            conn.close()

    def _sample(self) -> None:
        s = self._sampler.sample()
        self._system.append(
            (self.run_id, time.time(), s.cpu_percent, s.rss_mb, s.gpu_percent, s.gpu_mem_mb)
        )

    def _flush(self, conn: Any) -> None:
        with self._flush_lock:  # the writer thread and a pausing trainer may both flush
            steps = _drain(self._steps)
            rows = _drain(self._rows)
            if steps:
                values = torch.stack([s[2].float() for s in steps]).tolist()
                rows = [
                    (self.run_id, "loss", s, e, v, t)
                    for (s, e, _, t), v in zip(steps, values, strict=True)
                ] + rows
            run_store.add_metrics(conn, rows)
            if rows:
                kill_point("mid-flush")  # metrics committed, their checkpoint not yet
            run_store.add_system(conn, _drain(self._system))
            for write in _drain(self._writes):
                write(conn)

    def flush(self) -> None:
        """Write everything queued so far, now (from the calling thread)."""
        with contextlib.closing(connect(self._path)) as conn:
            self._flush(conn)

    def close(self) -> None:
        """Stop the writer after a last flush."""
        self._stop.set()
        self._thread.join()
        if self._error is not None:
            raise self._error


def _drain(queue: deque[Any]) -> list[Any]:
    items = []
    while queue:
        items.append(queue.popleft())
    return items
