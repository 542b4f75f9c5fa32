"""What the routes share: the models, the options, batchers, metrics and the log writer."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lepton_desktop.core.serving.batching import Batcher
from lepton_desktop.core.serving.connections import ConnectionLimits
from lepton_desktop.core.serving.metrics import Metrics
from lepton_desktop.core.serving.options import DEFAULT_OPTIONS
from lepton_desktop.core.serving.security import token_digest

if TYPE_CHECKING:
    import numpy as np

    from lepton_desktop.core.inference.predictor import Predictor
    from lepton_desktop.core.serving.journal import RequestJournal
    from lepton_desktop.core.serving.models import ModelSet
    from lepton_desktop.core.serving.openapi import DocumentCache

#: Request ids remembered for /feedback before the log writer has stored them.
RECENT_REQUESTS = 100_000


@dataclasses.dataclass(frozen=True)
class ServeOptions:
    """How the server behaves (the deployment's ``options`` plus its token)."""

    token: str | None = None
    cors: tuple[str, ...] = ()
    capture_inputs: bool = DEFAULT_OPTIONS["capture_inputs"]
    capture_pii: bool = DEFAULT_OPTIONS["capture_pii"]
    max_batch: int = DEFAULT_OPTIONS["max_batch"]
    max_wait_ms: float = DEFAULT_OPTIONS["max_wait_ms"]
    max_body_bytes: int = DEFAULT_OPTIONS["max_body_bytes"]
    timeout_s: float = DEFAULT_OPTIONS["timeout_s"]
    max_connections: int = DEFAULT_OPTIONS["max_connections"]
    header_timeout_s: float = DEFAULT_OPTIONS["header_timeout_s"]
    body_timeout_s: float = DEFAULT_OPTIONS["body_timeout_s"]
    #: ``(model, version, share)`` canaries and ``(model, version)`` shadows.
    canary: tuple[tuple[str, int, float], ...] = ()
    shadow: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_options(cls, options: Mapping[str, Any], token: str | None = None) -> ServeOptions:
        """From a deployment's options (unknown keys, such as ``workers``, are ignored).

        ``token``: the bearer token or its digest; the server keeps only the digest.
        """
        known = {f.name for f in dataclasses.fields(cls)} - {"token", "cors", "canary", "shadow"}
        values = {k: v for k, v in options.items() if k in known}
        digest = token_digest(token) if token else None
        canary = tuple((c["model"], c["version"], c["share"]) for c in options.get("canary", ()))
        shadow = tuple((c["model"], c["version"]) for c in options.get("shadow", ()))
        return cls(token=digest, cors=tuple(options.get("cors") or ()), canary=canary,
                   shadow=shadow, **values)  # fmt: skip

    def connection_limits(self) -> ConnectionLimits:
        """The limits the server's connections obey (see :mod:`.connections`)."""
        return ConnectionLimits(self.max_connections, self.header_timeout_s, self.body_timeout_s)


class Count:
    """A number with a ``value`` (what the server counts into when no runner shares one)."""

    def __init__(self) -> None:
        self.value = 0


class ServerState:
    """What the handlers share (one per app, used on its event loop).

    Attributes:
        log: the request journal (None: nothing is logged).
        served: requests answered, in ``served.value`` (a runner shares it across
            processes; see :class:`~lepton_desktop.core.serving.runner.ServerRunner`).
    """

    def __init__(
        self,
        models: ModelSet,
        options: ServeOptions,
        journal: RequestJournal | None,
        openapi: DocumentCache,
        served: Any = None,
    ) -> None:
        self.models = models
        self.options = options
        self.log = journal
        self.openapi = openapi
        self.metrics = Metrics()
        self.served = served if served is not None else Count()
        self._batchers: dict[Predictor, Batcher] = {}
        self._generation = models.generation
        self._recent: OrderedDict[str, int] = OrderedDict()
        models.set_canaries({name: (version, share) for name, version, share in options.canary})
        #: model name -> the versions that get a copy of its answered requests
        self.shadows: dict[str, list[int]] = {}
        for name, version in options.shadow:
            self.shadows.setdefault(name, []).append(version)
        self.shadows_pending = 0
        self.shadows_dropped = 0

    def batcher(self, predictor: Predictor) -> Batcher:
        """The batcher of a model version (made on first use, dropped after a swap)."""
        if self._generation != self.models.generation:
            live = {p for m in self.models.models.values() for p in m.versions.values()}
            self._batchers = {p: b for p, b in self._batchers.items() if p in live}
            self._generation = self.models.generation
        batcher = self._batchers.get(predictor)
        if batcher is None:
            name, version = predictor.name, str(predictor.version)

            def on_batch(rows: int, requests: int) -> None:
                self.metrics.observe_batch(name, version, rows, requests)

            batcher = Batcher(
                predictor.forward,
                max_batch=self.options.max_batch,
                max_wait_s=self.options.max_wait_ms / 1000,
                on_batch=on_batch,
            )
            self._batchers[predictor] = batcher
        return batcher

    async def forward(self, predictor: Predictor, x: np.ndarray) -> np.ndarray:
        """Raw outputs for ``x``, batched with concurrent requests to the same version."""
        return await self.batcher(predictor).run(x)

    def remember(self, request_id: str, rows: int) -> None:
        """Keep an answered request's id (for feedback before the log is written)."""
        self._recent[request_id] = rows
        if len(self._recent) > RECENT_REQUESTS:
            self._recent.popitem(last=False)

    def rows_of(self, request_id: str) -> int | None:
        """How many rows an answered request had, or None if unknown here."""
        return self._recent.get(request_id)
