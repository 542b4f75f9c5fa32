"""The server's routes: one table, matched by the guard, documented by OpenAPI.

Every route is a plain ``async`` function ``(state, ctx) -> Answer`` registered once
in a :class:`Route`; the same table answers requests (:meth:`Router.match`) and
describes them (:mod:`.openapi`), so no route is declared twice.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lepton_desktop.core.serving.answers import Answer
    from lepton_desktop.core.serving.context import RequestContext
    from lepton_desktop.core.serving.state import ServerState

Handler = Callable[["ServerState", "RequestContext"], Awaitable["Answer"]]
_PARAM = re.compile(r"\{(\w+)\}")


@dataclasses.dataclass(frozen=True)
class Route:
    """One method and path template, its handler, and how OpenAPI describes it.

    Attributes:
        method: ``GET`` or ``POST``.
        path: a template such as ``/v2/models/{model_name}/infer``.
        handler: answers the request.
        tag: the protocol's group in the OpenAPI document (``v2``, ``mlflow``, ...).
        summary: one line for the OpenAPI document.
        body: the name of the request body's schema (see :mod:`.openapi`), if any.
        extra_media: more media types the body may have (``text/csv``, binary).
        hidden: left out of the OpenAPI document (the document itself, ``/docs``).
        answer: the name of the 200 answer's JSON schema (see :mod:`.openapi_answers`).
        media: the 200 answer's media types.
        query: optional query parameters (``model``: a model ref).
    """

    method: str
    path: str
    handler: Handler
    tag: str
    summary: str
    body: str | None = None
    extra_media: tuple[str, ...] = ()
    hidden: bool = False
    answer: str | None = None
    media: tuple[str, ...] = ("application/json",)
    query: tuple[str, ...] = ()

    @property
    def params(self) -> list[str]:
        """The path parameters' names."""
        return _PARAM.findall(self.path)


class Router:
    """Finds the route of a request: exact paths by dict, templates by regex."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = list(routes)
        self._exact: dict[tuple[str, str], Route] = {}
        self._patterns: list[tuple[str, re.Pattern[str], Route]] = []
        self._paths: list[re.Pattern[str]] = []
        for route in self.routes:
            if route.params:
                pattern = re.compile("^" + _PARAM.sub(r"(?P<\1>[^/]+)", route.path) + "$")
                self._patterns.append((route.method, pattern, route))
                self._paths.append(pattern)
            else:
                self._exact[(route.method, route.path)] = route
                self._paths.append(re.compile("^" + re.escape(route.path) + "$"))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route and its path parameters, or None."""
        route = self._exact.get((method, path))
        if route is not None:
            return route, {}
        for wanted, pattern, candidate in self._patterns:
            if wanted == method:
                found = pattern.match(path)
                if found is not None:
                    return candidate, found.groupdict()
        return None

    def knows_path(self, path: str) -> bool:
        """Whether some route has this path (then another method gets a 405)."""
        return any(p.match(path) for p in self._paths)


def route(
    method: str, path: str, tag: str, summary: str, **extra: Any
) -> Callable[[Handler], Route]:
    """Decorator form: ``@route("GET", "/ping", "mlflow", "Liveness")`` makes a Route."""

    def make(handler: Handler) -> Route:
        return Route(method, path, handler, tag, summary, **extra)

    return make
