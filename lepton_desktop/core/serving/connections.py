"""Connections: what keeps slow, half-open and surplus clients from stopping the server.

uvicorn reads a request's headers with no time limit and accepts connections until the
process runs out of file descriptors; at that point (uvloop) every new connection is
accepted and dropped at once, so about a thousand clients that send half a request and
wait are enough to make a server answer nobody. :class:`GuardedHttpProtocol` is
uvicorn's httptools protocol with three additions, driven by one
:class:`ConnectionPolicy` per server process:

* **A header deadline.** A connection must deliver a request's complete headers within
  ``header_timeout_s`` of connecting, or of the first byte of its next request on a
  kept-alive connection; otherwise it is closed (with a 408 when it began a request).
* **A body deadline.** The body must follow within ``body_timeout_s`` of the headers.
  While the guard (:mod:`.guard`) still reads it, the request is marked late in its
  scope (:data:`BODY_LATE`) and the guard answers 408 and closes (the answer is logged
  like any other); a body still arriving after an early answer (401, 413) just gets
  the connection closed.
* **A cap on connections** (``max_connections``, and never more than the open-file
  limit leaves room for): a connection beyond it makes room by closing the oldest idle
  one, preferring connections that never completed a request (how half-open floods
  look) to kept-alive ones; a real client, which sends its request at once, is served
  however many half-open connections wait. When every connection is busy with a
  request, the newcomer gets a 503 and is closed.

Deadlines are kept as times in insertion-ordered dicts (one timeout each, so the
oldest entry is due first) and checked by one sweep a fraction of a second apart:
a request costs a few dict operations, not a timer of its own (an event-loop timer
costs about 10 us to arm and cancel, as much as the rest of the protocol's work).

:func:`raise_open_file_limit` lifts the soft open-file limit to the hard one, and
:class:`RateLimitedLog` keeps a flood of identical warnings (accept errors, invalid
requests) from filling the disk.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
import time
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: Open files a server process needs besides its connections: the listening socket,
#: the project file and its WAL, the journal, libraries, pipes to the supervisor.
RESERVED_FILES = 128
#: A refused connection is read (and its bytes dropped) this long after its 503, so
#: that closing it does not reset the connection before the client read the answer.
LINGER_S = 1.0
#: Refused connections lingering at once, beyond which new ones are dropped unanswered.
MAX_LINGERING = 64
#: The scope key set (to True) when a request's body is overdue; the guard answers 408.
BODY_LATE = "lepton.body_late"


def _answer(status: str, message: str) -> bytes:
    body = b'{"error": "' + message.encode() + b'"}'
    return (
        b"HTTP/1.1 " + status.encode() + b"\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
    ) + body


REQUEST_TIMEOUT = _answer("408 Request Timeout", "the request did not arrive in time")
BUSY = _answer("503 Service Unavailable", "too many connections; try again shortly")


@dataclasses.dataclass(frozen=True)
class ConnectionLimits:
    """How long a client may take to send a request, and how many may be connected."""

    max_connections: int = 1000
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0

    @property
    def sweep_s(self) -> float:
        """How often deadlines are checked: a quarter of the shorter one, 0.05 to 1 s."""
        return max(0.05, min(1.0, min(self.header_timeout_s, self.body_timeout_s) / 4))


class ConnectionPolicy:
    """The connections of one server process: idle ones in order, and their deadlines.

    Args:
        limits: the deadlines and the cap.
        open_files: the soft open-file limit in effect; the cap stays below it.
    """

    def __init__(self, limits: ConnectionLimits, open_files: int | None = None) -> None:
        self.limits = limits
        room = limits.max_connections if open_files is None else open_files - RESERVED_FILES
        self.cap = max(1, min(limits.max_connections, room))
        # Idle connections, oldest first (dicts keep insertion order): `fresh` never
        # completed a request, `kept` did and waits for its next one.
        self.fresh: dict[GuardedHttpProtocol, None] = {}
        self.kept: dict[GuardedHttpProtocol, None] = {}
        # When each connection's headers, or its request's body, are due (loop time).
        self.headers_due: dict[GuardedHttpProtocol, float] = {}
        self.body_due: dict[GuardedHttpProtocol, float] = {}
        self.lingering = 0
        self._sweeping = False
        #: Connections closed for being late, closed to make room, and refused.
        self.timed_out = 0
        self.evicted = 0
        self.refused = 0

    def idle(self, connection: GuardedHttpProtocol, *, fresh: bool) -> None:
        """``connection`` waits for a request (it may be closed to make room)."""
        (self.fresh if fresh else self.kept)[connection] = None

    def busy(self, connection: GuardedHttpProtocol) -> None:
        """``connection`` has a request in progress (it is never closed to make room)."""
        self.fresh.pop(connection, None)
        self.kept.pop(connection, None)

    def forget(self, connection: GuardedHttpProtocol) -> None:
        """``connection`` is gone."""
        self.busy(connection)
        self.headers_due.pop(connection, None)
        self.body_due.pop(connection, None)

    def make_room(self, connected: int) -> bool:
        """With ``connected`` connections (the newcomer counted), close the oldest idle
        one if the cap is passed. False: none is idle, so the newcomer must be refused."""
        if connected <= self.cap:
            return True
        for idle in (self.fresh, self.kept):
            if idle:
                oldest = next(iter(idle))
                self.forget(oldest)
                self.evicted += 1
                oldest.close_late()
                return True
        return False

    def start_sweeping(self, loop: asyncio.AbstractEventLoop) -> None:
        """Check the deadlines every ``limits.sweep_s`` from now on (once per loop)."""
        if not self._sweeping:
            self._sweeping = True
            loop.call_later(self.limits.sweep_s, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for due, late in ((self.headers_due, _headers_late), (self.body_due, _body_late)):
            while due:
                connection, deadline = next(iter(due.items()))
                if deadline > now:
                    break  # one timeout per dict: the rest are due later
                del due[connection]
                self.timed_out += 1
                late(connection)
        loop.call_later(self.limits.sweep_s, self._sweep, loop)


def _headers_late(connection: GuardedHttpProtocol) -> None:
    connection.policy.busy(connection)
    connection.close_late()


def _body_late(connection: GuardedHttpProtocol) -> None:
    connection.body_late()


def protocol_for(policy: ConnectionPolicy) -> type[GuardedHttpProtocol]:
    """The protocol class uvicorn instantiates per connection, bound to ``policy``."""
    return type("LeptonHttpProtocol", (GuardedHttpProtocol,), {"policy": policy})


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines and a cap (see the module docstring)."""

    policy: ClassVar[ConnectionPolicy]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_request = False  # from a request's first byte to its body's last
        self._refused = False

    # -- uvicorn's protocol, extended --------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Admit the connection (making room if needed); its headers are now due."""
        super().connection_made(transport)
        policy = self.policy
        policy.start_sweeping(self.loop)
        if not policy.make_room(len(self.connections)):
            self._refuse()
            return
        policy.idle(self, fresh=True)
        policy.headers_due[self] = self.loop.time() + policy.limits.header_timeout_s

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection."""
        self.policy.forget(self)
        if self._refused:
            self.policy.lingering -= 1
            self._refused = False
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        """A request's first byte: its headers are now due (if not since connecting)."""
        super().on_message_begin()
        self._in_request = True
        due = self.policy.headers_due
        if self not in due:  # a kept-alive connection's next request
            due[self] = self.loop.time() + self.policy.limits.header_timeout_s

    def on_headers_complete(self) -> None:
        """The headers arrived in time: the request is the app's now; its body is due."""
        policy = self.policy
        policy.headers_due.pop(self, None)
        policy.busy(self)
        super().on_headers_complete()
        policy.body_due.pop(self, None)  # re-inserted at the end: the dict stays in due order
        policy.body_due[self] = self.loop.time() + policy.limits.body_timeout_s

    def on_message_complete(self) -> None:
        """The body arrived."""
        super().on_message_complete()
        self._in_request = False
        self.policy.body_due.pop(self, None)

    def on_response_complete(self) -> None:
        """Answered: idle until the next request (a body still arriving stays due)."""
        pipelined = bool(self.pipeline)
        super().on_response_complete()
        if not (self.transport.is_closing() or pipelined or self._in_request):
            self.policy.idle(self, fresh=False)

    # -- deadlines, room, refusal ------------------------------------------------------

    def close_late(self) -> None:
        """Close the connection: late with its headers, or the oldest idle one when
        room is needed (a 408 when it had begun a request)."""
        if self.transport.is_closing():
            return
        if self._in_request:
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()

    def body_late(self) -> None:
        """The body is overdue: the guard answers 408 if it still reads it, else close."""
        cycle = self.cycle
        if self.transport.is_closing() or cycle is None:
            return
        if cycle.response_complete:  # answered early (401, 413): no more waiting
            self.transport.close()
        elif not cycle.response_started:
            cycle.scope[BODY_LATE] = True  # type: ignore[literal-required]
            cycle.message_event.set()  # wakes the guard's receive()

    def _refuse(self) -> None:
        # Every connection is busy: answer 503 at once, then read and drop what the
        # client sends for a moment, so that our close does not reset the connection
        # before the client read the answer.
        policy = self.policy
        policy.refused += 1
        if policy.lingering >= MAX_LINGERING or not self.transport.can_write_eof():
            self.transport.abort()
            return
        policy.lingering += 1
        self._refused = True
        # Its bytes are dropped (set on this connection only: no check on the hot path).
        self.data_received = _drop  # type: ignore[method-assign]
        self.transport.write(BUSY)
        self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)


def _drop(data: bytes) -> None:
    """What a refused connection does with the bytes it still receives."""


def raise_open_file_limit() -> int | None:
    """Raise the soft open-file limit to the hard one where allowed; the limit in effect.

    None where the platform has no such limit (Windows).
    """
    if sys.platform == "win32":
        return None
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # macOS reports an unlimited hard limit but refuses a soft one above OPEN_MAX.
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 10240)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass  # keep the soft limit; the connection cap stays below it
    return None if soft == resource.RLIM_INFINITY else int(soft)


class RateLimitedLog(logging.Filter):
    """Lets through one record per message per ``interval_s``; counts the rest.

    A flood of the same warning (``socket.accept() out of system resource`` with its
    traceback, ``Invalid HTTP request received.``) becomes one line per interval that
    says how many were left out.
    """

    def __init__(self, interval_s: float = 10.0, clock: Any = time.monotonic) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._clock = clock
        self._last: dict[tuple[str, object], float] = {}
        self._dropped: dict[tuple[str, object], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether ``record`` is logged (the first of its kind in the interval)."""
        # The first line names the kind: asyncio appends the socket or transport after it.
        key = (record.name, str(record.msg).split("\n", 1)[0])
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._dropped[key] = self._dropped.get(key, 0) + 1
            return False
        self._last[key] = now
        dropped = self._dropped.pop(key, 0)
        if dropped and last is not None:
            record.msg = f"{record.msg} ({dropped} more like it in the last {now - last:.0f} s)"
        if len(self._last) > 1000:  # many different messages: forget the oldest
            self._dropped.pop(next(iter(self._last)), None)
            self._last.pop(next(iter(self._last)))
        return True


#: The loggers a hostile client can make speak: the event loop's and uvicorn's.
NOISY_LOGGERS = ("asyncio", "uvicorn.error")


def quiet_floods(interval_s: float = 10.0) -> RateLimitedLog:
    """Rate-limit the loggers a client can flood (see :class:`RateLimitedLog`)."""
    limiter = RateLimitedLog(interval_s)
    for name in NOISY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RateLimitedLog) for f in logger.filters):  # once
            logger.addFilter(limiter)
    return limiter
