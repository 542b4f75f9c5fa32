"""One request as the guard and the routes see it: a typed record, not a dict.

The guard (:mod:`.guard`) makes a :class:`RequestContext` for every HTTP request,
fills in what it learns (the status, the body), and a route fills in what only it
knows (which model answered, how many rows, the inputs and outputs to log). After the
answer the guard turns it into a request-log row and metrics.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

#: Which protocol a path belongs to (metrics and the request log are labelled by it).
PROTOCOL_PATHS = {
    "/invocations": "mlflow", "/ping": "mlflow", "/health": "mlflow", "/version": "mlflow",
    "/predict": "predict", "/feedback": "feedback", "/explain": "explain",
}  # fmt: skip


def protocol_of(path: str) -> str:
    """``v2``, ``mlflow``, ``predict``, ``feedback``, ``explain`` or ``other``."""
    if path.startswith("/v2"):
        return "v2"
    return PROTOCOL_PATHS.get(path, "other")


class RequestIds:
    """Request ids: a random per-process prefix and a counter (unique, and cheap).

    16 random bytes per request (uuid4) cost more than the rest of the id's life; a
    64-bit random prefix per process plus a counter is as unique across processes and
    restarts for any realistic number of requests.
    """

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._next = 0

    def new(self) -> str:
        """A fresh id: 32 hex characters, like a uuid4's."""
        self._next += 1
        return f"{self._prefix}{self._next:016x}"


@dataclasses.dataclass(slots=True)
class RequestContext:
    """One request (see the module docstring).

    Attributes:
        request_id: the ``X-Request-ID`` of the answer.
        method: ``GET``, ``POST``, ...
        path: the URL's path.
        headers: the raw ASGI headers (lower-case names).
        query: the raw query string.
        body: the whole body, once read.
        params: the route's path parameters (``model_name``, ``model_version``).
        status: the answer's HTTP status (500 until one is sent).
        started: whether the answer has started (nothing else may be sent then).
        model: the model name that answered, version: its version number.
        n_rows: rows predicted.
        inputs: what the client sent (records or an array), for the request log.
        outputs: the answers, or a callable that decodes them later (off the hot path).
        error: the message of a refused or failed request.
    """

    request_id: str
    method: str
    path: str
    headers: list[tuple[bytes, bytes]]
    query: bytes = b""
    body: bytes = b""
    params: dict[str, str] = dataclasses.field(default_factory=dict)
    status: int = 500
    started: bool = False
    model: str | None = None
    version: int | None = None
    n_rows: int = 0
    inputs: Any = None
    outputs: Any = None
    error: str | None = None

    def header(self, name: bytes) -> bytes | None:
        """A request header by its lower-case name, or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def header_text(self, name: bytes, default: str = "") -> str:
        """A request header as text (latin-1, as HTTP has it), or ``default``."""
        value = self.header(name)
        return default if value is None else value.decode("latin-1")

    @property
    def protocol(self) -> str:
        """See :func:`protocol_of`."""
        return protocol_of(self.path)

    def answered(self, model: str, version: int, rows: int, inputs: Any, outputs: Any) -> None:
        """Record what a prediction route did (for the log and the metrics)."""
        self.model, self.version, self.n_rows = model, version, rows
        self.inputs, self.outputs = inputs, outputs
