"""Dynamic batching: concurrent requests to one model version share one forward pass.

Each request encodes its own rows on the event loop and hands the array to the
version's :class:`Batcher`. The batcher's drain task takes every pending request (up
to ``max_batch`` rows), concatenates them, runs the forward pass in a thread
(``run_in_executor``, so the loop keeps accepting requests meanwhile) and hands each
request its slice of the outputs.

No request waits for company when the server is quiet: a lone request is forwarded
at once. Only when the previous pass was shared (the server is under load) does the
batcher wait up to ``max_wait_ms`` for more requests to fill the batch; requests
that arrive during a pass join the next one anyway.

When the server is quiet and passes are fast, a lone request does not even go through
the queue: its pass runs right there, in its own coroutine (the queue's future, task and
two turns of the event loop cost more than the pass: 50 us of a 230 us request). One
request in :data:`PROBE_EVERY` still takes the queue, so that when load comes, other
requests join it, the pass is shared, and the batcher switches back to batching.

A pass that takes well under a millisecond (a small MLP) runs on the event loop
itself: handing it to a thread and back costs more than the pass. The batcher times
every pass and moves to the thread pool as soon as passes get slower than
``INLINE_BELOW_S`` (a CNN, a large batch), so a slow model never stalls the loop for
long. Requests that arrive meanwhile queue up and share the next pass.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

import numpy as np

Forward = Callable[[np.ndarray], np.ndarray]
#: Passes faster than this (seconds, smoothed) run on the event loop, not in a thread.
INLINE_BELOW_S = 0.0005
#: While quiet, one request in this many goes through the queue to notice load.
PROBE_EVERY = 8


class Batcher:
    """The batching queue of one model version (create and use on one event loop).

    Args:
        forward: inputs ``(N, ...)`` -> outputs ``(N, ...)``; thread-safe.
        max_batch: most rows in one pass (a larger single request runs alone).
        max_wait_s: how long a pass under load waits for more requests.
        on_batch: called with each pass's row and request counts (for metrics).
    """

    def __init__(
        self,
        forward: Forward,
        *,
        max_batch: int = 32,
        max_wait_s: float = 0.002,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        self._forward = forward
        self.max_batch = max(1, max_batch)
        self.max_wait_s = max(0.0, max_wait_s)
        self._on_batch = on_batch
        self._pending: deque[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = deque()
        self._draining = False
        self._task: asyncio.Task[None] | None = None
        self._loaded = False  # whether the last pass was shared (load is on)
        self._pass_s: float | None = None  # smoothed seconds per pass (None: unknown)
        self._since_probe = 0
        #: Passes run and requests served (for tests and the bench).
        self.passes = 0
        self.requests = 0

    async def run(self, x: np.ndarray) -> np.ndarray:
        """The outputs for inputs ``x``, computed in some shared pass."""
        if self._alone():
            outputs = self._timed(x)
            self._count(len(x), 1)
            return outputs
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        self._pending.append((x, future))
        if not self._draining:
            self._draining = True
            self._task = loop.create_task(self._drain())  # a reference keeps it alive
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch = self._take()
                if self._loaded and self.max_wait_s and _rows(batch) < self.max_batch:
                    await asyncio.sleep(self.max_wait_s)
                    batch += self._take(self.max_batch - _rows(batch), joining=True)
                await self._run_batch(loop, batch)
        finally:
            self._draining = False

    def _alone(self) -> bool:
        # Quiet (nothing queued or running, the last pass not shared) and fast: run here.
        if self._draining or self._pending or self._loaded or not self._fast():
            return False
        self._since_probe += 1
        if self._since_probe >= PROBE_EVERY:
            self._since_probe = 0
            return False  # a probe: through the queue, where others can join it
        return True

    def _fast(self) -> bool:
        return self._pass_s is not None and self._pass_s < INLINE_BELOW_S

    def _count(self, rows: int, requests: int) -> None:
        self.passes += 1
        self.requests += requests
        if self._on_batch is not None:
            self._on_batch(rows, requests)

    def _take(
        self, room: int | None = None, *, joining: bool = False
    ) -> list[tuple[np.ndarray, asyncio.Future]]:
        # A request larger than the room runs alone, unless it would join a batch.
        room = self.max_batch if room is None else room
        taken: list[tuple[np.ndarray, asyncio.Future]] = []
        rows = 0
        while self._pending:
            x, future = self._pending[0]
            if future.done():  # the request timed out or its client left
                self._pending.popleft()
                continue
            if (taken or joining) and rows + len(x) > room:
                break
            taken.append(self._pending.popleft())
            rows += len(x)
            if rows >= room:
                break
        return taken

    def _timed(self, inputs: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        outputs = self._forward(inputs)
        seconds = time.perf_counter() - start
        self._pass_s = seconds if self._pass_s is None else 0.8 * self._pass_s + 0.2 * seconds
        return outputs

    async def _run_batch(
        self, loop: asyncio.AbstractEventLoop, batch: list[tuple[np.ndarray, asyncio.Future]]
    ) -> None:
        batch = [(x, f) for x, f in batch if not f.done()]
        if not batch:
            return
        inputs = batch[0][0] if len(batch) == 1 else np.concatenate([x for x, _ in batch])
        try:
            if self._fast():
                outputs = self._timed(inputs)
            else:
                outputs = await loop.run_in_executor(None, self._timed, inputs)
        except Exception as exc:  # a bug in a pass fails its requests, not the server
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        self._loaded = len(batch) > 1
        self._count(len(inputs), len(batch))
        start = 0
        for x, future in batch:
            if not future.done():
                future.set_result(outputs[start : start + len(x)])
            start += len(x)


def _rows(batch: list[tuple[np.ndarray, asyncio.Future]]) -> int:
    return sum(len(x) for x, _ in batch)
