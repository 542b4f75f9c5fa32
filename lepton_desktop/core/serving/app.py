"""The server's ASGI app: KServe V2, MLflow scoring and native routes on one port.

:func:`create_app` puts the route table together (one module per protocol:
:mod:`.routes_v2`, :mod:`.routes_mlflow`, :mod:`.routes_native`, plus the OpenAPI
document's own routes in :mod:`.openapi`) behind the :class:`~.guard.Guard`, the one
layer every request passes (id, token, limits, logging), and adds CORS when asked.
Every route is dispatched one way, by the guard's :class:`~.router.Router`; handlers
parse bodies with orjson and answer with orjson-encoded bytes; inference goes through
one :class:`~.batching.Batcher` per model version.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.middleware.cors import CORSMiddleware

from lepton_desktop.core.serving import (
    openapi,
    routes_explain,
    routes_mlflow,
    routes_native,
    routes_v2,
)
from lepton_desktop.core.serving.guard import Guard
from lepton_desktop.core.serving.journal import RequestJournal
from lepton_desktop.core.serving.models import ModelSet
from lepton_desktop.core.serving.router import Router
from lepton_desktop.core.serving.state import ServeOptions, ServerState

ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[..., Awaitable[Any]], Callable[..., Awaitable[None]]],
    Awaitable[None],
]
#: Every route the server answers, in the order the OpenAPI document lists them.
ROUTES = [
    *routes_v2.ROUTES,
    *routes_mlflow.ROUTES,
    *routes_native.ROUTES,
    *routes_explain.ROUTES,
    *openapi.ROUTES,
]

__all__ = ["ROUTES", "ASGIApp", "ServeOptions", "app_state", "create_app"]


def create_app(
    models: ModelSet,
    options: ServeOptions | None = None,
    journal: RequestJournal | None = None,
    *,
    served: Any = None,
) -> ASGIApp:
    """The server's ASGI app for ``models`` (see the module docstring).

    Args:
        models: what it serves.
        options: limits, token, batching (default :class:`ServeOptions`).
        journal: where each request is written before its answer (None: no log).
        served: a shared counter of answered requests (``.value``), if any.
    """
    options = options or ServeOptions()
    document = openapi.DocumentCache(ROUTES, secured=options.token is not None)
    state = ServerState(models, options, journal, document, served)
    app: ASGIApp = Guard(Router(ROUTES), state)
    if state.options.cors:
        app = CORSMiddleware(
            app,
            allow_origins=list(state.options.cors),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Inference-Header-Content-Length"],
            expose_headers=["X-Request-ID", "Inference-Header-Content-Length"],
        )
    return app


def app_state(app: ASGIApp) -> ServerState:
    """The state behind an app made by :func:`create_app` (tests, the runner)."""
    while not isinstance(app, Guard):
        app = app.app  # type: ignore[attr-defined]
    return app.state
