"""The request log's writer: a background thread that stores rows in batches.

The request path only appends a dict to a deque (no I/O, no JSON); the writer thread
turns rows into JSON and writes them with its own connection, one transaction per
flush (every ``interval`` seconds or ``batch_rows`` rows, whichever comes first), so a
busy server costs the project file a few transactions a second, not one per request.
Feedback rows take the same way. On close, everything still queued is written.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import orjson

log = logging.getLogger(__name__)

#: Encode this many rows, then hand the GIL over. Encoding a flush of hundreds of rows
#: in one go held it for Python's whole 5 ms switch interval while a request waited
#: (bench/serving_latency: p99 at concurrency 1 was 6 ms against a 1.3 ms floor).
YIELD_EVERY = 16


class RequestLogWriter:
    """Collects request-log and feedback rows and writes them from one thread.

    Args:
        path: the project file.
        deployment_id: the deployment the rows belong to.
        interval: seconds between flushes.
        batch_rows: flush early once this many rows wait.
    """

    def __init__(
        self,
        path: Path,
        deployment_id: int | None,
        *,
        interval: float = 0.25,
        batch_rows: int = 2000,
    ) -> None:
        self.path = Path(path)
        self.deployment_id = deployment_id
        self._interval = interval
        self._batch_rows = batch_rows
        self._requests: deque[dict[str, Any]] = deque()
        self._feedback: deque[tuple[str, Any, int]] = deque()
        self._wake = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
        #: Rows written so far (requests), for tests and the job's progress.
        self.written = 0
        self._thread.start()

    # -- the request path: append only ---------------------------------------------------

    def add(self, row: dict[str, Any]) -> None:
        """Queue one request row (inputs/outputs may be Python objects)."""
        self._requests.append(row)
        if len(self._requests) >= self._batch_rows:
            self._wake.set()

    def add_feedback(self, request_id: str, label: Any, row: int) -> None:
        """Queue the true label of one answered row."""
        self._feedback.append((request_id, label, row))

    @property
    def pending(self) -> int:
        """Rows not written yet."""
        return len(self._requests)

    # -- the writer thread ---------------------------------------------------------------

    def _run(self) -> None:
        from lepton_desktop.core.store.db import connect

        conn = connect(self.path)
        try:
            while True:
                self._wake.wait(self._interval)
                self._wake.clear()
                closing = self._closing
                self._flush(conn)
                if closing:
                    break
        finally:
            conn.close()

    def _flush(self, conn: Any) -> None:
        from lepton_desktop.core.store import serving as serving_store

        rows = _drain(self._requests)
        feedback = _drain(self._feedback)
        try:
            if rows:
                for index, row in enumerate(rows):
                    row["deployment_id"] = self.deployment_id
                    row["inputs"] = _json(row.get("inputs"))
                    row["outputs"] = _json(row.get("outputs"))
                    if index % YIELD_EVERY == YIELD_EVERY - 1:
                        time.sleep(0)  # let a waiting request have the GIL (see YIELD_EVERY)
                self.written += serving_store.add_requests(conn, rows)
            serving_store.add_feedbacks(conn, self.deployment_id, feedback)
        except Exception:  # never kill the thread: the server keeps answering
            log.exception("writing %d request-log rows failed", len(rows))

    def flush(self, timeout: float = 10.0) -> None:
        """Wake the writer and wait until the rows queued so far are written."""
        target = self.written + len(self._requests)
        deadline = time.monotonic() + timeout
        while self.written < target and self._thread.is_alive() and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.01)

    def close(self) -> None:
        """Write what is queued and stop the thread."""
        self._closing = True
        self._wake.set()
        self._thread.join(timeout=30)


def _drain(queue: deque) -> list:
    items = []
    while queue:
        items.append(queue.popleft())
    return items


def _json(value: Any) -> str | None:
    if callable(value):  # outputs the writer decodes here, off the request path
        value = value()
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value, default=_jsonable, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):  # an image sent as bytes: keep it readable
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    return str(value)
