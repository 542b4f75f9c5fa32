"""The guard: the one ASGI layer every request passes, once.

It gives the request its id (``X-Request-ID`` on every answer), checks the token,
finds the route (404, 405), reads the body within its size and time limits (413;
408 once :mod:`.connections` marks the body overdue), runs it
within the time limit (504), turns a client's mistake into a 4xx naming it and a bug
into a 500 (logged; the server keeps serving), and then counts the request in the
metrics and writes its row into the request journal, before the answer is sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from lepton_desktop.core.errors import LeptonError
from lepton_desktop.core.serving.answers import Answer, client_error_status, error
from lepton_desktop.core.serving.candidates import start_shadows
from lepton_desktop.core.serving.connections import BODY_LATE
from lepton_desktop.core.serving.context import RequestContext, RequestIds
from lepton_desktop.core.serving.router import Router
from lepton_desktop.core.serving.security import bearer_ok, needs_token
from lepton_desktop.core.serving.state import ServerState

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Guard:
    """The server's ASGI app (see the module docstring).

    Args:
        router: the routes.
        state: what the routes share.
    """

    def __init__(self, router: Router, state: ServerState) -> None:
        self.router = router
        self.state = state
        self._ids = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is off; websockets are not served
        start = time.perf_counter()
        ctx = RequestContext(
            self._ids.new(), scope["method"], scope["path"], scope["headers"],
            scope.get("query_string", b""),
        )  # fmt: skip
        try:
            answer = await self._answer(ctx, receive, scope)
        except Exception as exc:  # a bug: log it, answer 500, keep serving
            log.exception("request %s %s failed", ctx.method, ctx.path)
            answer = _refuse(ctx, 500, f"internal error: {type(exc).__name__}")
        ctx.status = answer.status
        self._record(ctx, time.perf_counter() - start)
        await _send(send, answer, ctx.request_id)
        if self.state.shadows and ctx.status == 200 and ctx.model in self.state.shadows:
            start_shadows(self.state, ctx)  # after the answer: never the client's wait

    async def _answer(self, ctx: RequestContext, receive: Receive, scope: Scope) -> Answer:
        options = self.state.options
        if needs_token(ctx.path, ctx.method, options.token, bool(options.cors)) and not bearer_ok(
            ctx.header(b"authorization"), options.token or ""
        ):
            answer = _refuse(ctx, 401, "missing or wrong bearer token")
            answer.headers = {"www-authenticate": "Bearer"}
            return answer
        found = self.router.match(ctx.method, ctx.path)
        if found is None:
            if self.router.knows_path(ctx.path):
                return _refuse(ctx, 405, f"{ctx.method} is not allowed on {ctx.path}")
            return _refuse(ctx, 404, f"no route {ctx.path}")
        route, ctx.params = found
        try:
            body = await _read_body(ctx, receive, options.max_body_bytes, scope)
        except _BodyLate:  # a client that stops sending holds a connection: close it
            late = f"the body did not arrive within {options.body_timeout_s:g} s"
            answer = _refuse(ctx, 408, late)
            answer.headers = {"connection": "close"}
            return answer
        if body is None:
            return _refuse(ctx, 413, f"the body is larger than {options.max_body_bytes} bytes")
        ctx.body = body
        try:
            async with asyncio.timeout(options.timeout_s):
                return await route.handler(self.state, ctx)
        except TimeoutError:
            return _refuse(ctx, 504, f"no answer within {options.timeout_s} s")
        except LeptonError as exc:
            return _refuse(ctx, client_error_status(exc), str(exc))

    def _record(self, ctx: RequestContext, seconds: float) -> None:
        # Before the answer is sent: a request answered is a request journaled.
        state = self.state
        state.served.value += 1
        version = "" if ctx.version is None else str(ctx.version)
        state.metrics.observe(ctx.model or "", version, ctx.protocol, ctx.status, seconds)
        if state.log is not None:
            state.log.request(ctx, time.time(), seconds * 1000)


def _refuse(ctx: RequestContext, status: int, message: str) -> Answer:
    """An error answer; the request log keeps its message."""
    ctx.error = message
    return error(ctx.path, status, message)


class _BodyLate(Exception):
    """The connection's body deadline passed (see :mod:`.connections`)."""


async def _read_body(
    ctx: RequestContext, receive: Receive, limit: int, scope: Scope
) -> bytes | None:
    """The whole body, or None when it is over ``limit`` (declared or streamed).

    Raises:
        _BodyLate: the body did not arrive in time.
    """
    declared = ctx.header(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client left
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if scope.get(BODY_LATE):
            raise _BodyLate


async def _send(send: Send, answer: Answer, request_id: str) -> None:
    headers = [
        (b"content-type", answer.media.encode()),
        (b"content-length", b"%d" % len(answer.body)),
        (b"x-request-id", request_id.encode()),
    ]
    if answer.headers:
        headers += [(k.encode(), v.encode()) for k, v in answer.headers.items()]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})
