"""A server process: load the models, answer on the shared socket until told to stop.

The :class:`~.runner.ServerRunner` starts one or more of these (``--workers N``) on a
socket it bound itself; each loads its own models, follows the project's registry,
writes its requests into its own journal (:mod:`.journal`) before answering, and
counts what it answered in a number the runner reads. It never writes the request
log into the project itself: the runner's shipper does, from the journals, in another
process, so a burst of logging never stalls an answer. When the runner dies, the
operating system stops these too (Linux's parent-death signal; elsewhere a watchdog,
see :mod:`~lepton_desktop.core.system.lifeline`).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

from lepton_desktop.core.serving.connections import (
    ConnectionLimits,
    ConnectionPolicy,
    protocol_for,
    quiet_floods,
    raise_open_file_limit,
)

if TYPE_CHECKING:
    from lepton_desktop.core.inference.predictor import ModelParts
    from lepton_desktop.core.serving.models import ModelSet
    from lepton_desktop.core.serving.runner import ServeSpec


def child_main(
    payload: str,
    sock: socket.socket,
    parts: Sequence[ModelParts] | None,
    served: Any,
    ready: Any,
    index: int,
    parent: int,
) -> None:
    """Serve until SIGTERM (graceful: what is in flight is answered first).

    Args:
        payload: the :class:`~.runner.ServeSpec` as JSON.
        sock: the bound socket every server process shares.
        parts: models already read (a bundle given as parts), else None.
        served: a shared integer counting the requests this process answered.
        ready: an event set once this process accepts connections.
        index: this process's number (0 reports the loaded models to the project).
        parent: the runner's pid; if it is gone already, stop at once.
    """
    from lepton_desktop.core.serving.runner import ServeSpec
    from lepton_desktop.core.serving.state import ServeOptions
    from lepton_desktop.core.system.lifeline import die_with_parent

    # A server whose supervisor was killed must not go on answering (and journaling)
    # with nobody to ship its log or stop it.
    die_with_parent(parent)
    spec = ServeSpec(**json.loads(payload))
    _torch_threads(spec.workers)
    models = load_models(spec, parts)
    if spec.project is not None:
        on_change = _loaded_writer(spec) if index == 0 else None
        if on_change is not None:
            on_change(models)
        models.watch(spec.watch_interval, on_change=on_change)
    app, journal = build_app(spec, models, served)
    limits = ServeOptions.from_options(spec.options).connection_limits()
    server = ReadyServer(uvicorn_config(app, limits), ready)
    try:
        server.run(sockets=[sock])  # handles SIGTERM and SIGINT itself: a graceful stop
    finally:
        models.close()
        if journal is not None:
            journal.close()


class ReadyServer(uvicorn.Server):
    """uvicorn's server, saying when it listens (no probe request needed)."""

    def __init__(self, config: uvicorn.Config, ready: Any) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.should_exit:
            self._ready.set()


def _torch_threads(workers: int) -> None:
    # Throughput comes from batching and worker processes; a small model's forward
    # pass gains nothing from more threads, which would fight the event loop.
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // (2 * workers)))


def uvicorn_config(app: Any, limits: ConnectionLimits | None = None) -> uvicorn.Config:
    """uvicorn's settings for our app (uvloop when installed, httptools).

    Connections obey ``limits`` (:mod:`.connections`): the open-file limit is raised
    as far as allowed, the connection cap stays below it, and a flood of identical
    warnings is logged once per interval.
    """
    policy = ConnectionPolicy(limits or ConnectionLimits(), raise_open_file_limit())
    config = uvicorn.Config(
        app,
        http=protocol_for(policy),
        ws="none",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
        server_header=False,
        lifespan="off",
    )
    quiet_floods()  # after uvicorn configured its loggers
    return config


def load_models(spec: ServeSpec, parts: Sequence[ModelParts] | None = None) -> ModelSet:
    """The spec's models: ``parts`` already read, its bundle, or its project."""
    from lepton_desktop.core.errors import LeptonError
    from lepton_desktop.core.serving.models import ModelSet

    if parts is not None:
        return ModelSet.from_parts(parts)
    if spec.bundle is not None:
        from lepton_desktop.core.inference.bundle import read_bundle

        return ModelSet.from_parts(read_bundle(Path(spec.bundle)))
    if spec.project is None:
        raise LeptonError("nothing to serve: give a project or a bundle")
    return ModelSet.from_project(Path(spec.project), spec.models)


def build_app(spec: ServeSpec, models: ModelSet, served: Any = None) -> tuple[Any, Any]:
    """The app for ``models`` with the spec's options, and its journal if it logs."""
    from lepton_desktop.core.serving.app import ServeOptions, create_app
    from lepton_desktop.core.serving.journal import RequestJournal

    options = ServeOptions.from_options(spec.options, spec.token)
    journal = None
    if spec.log_path is not None:
        redact = None if options.capture_pii else models.redacted
        journal = RequestJournal(
            Path(spec.log_path), spec.deployment_id, options.capture_inputs, redact
        )
    return create_app(models, options, journal, served=served), journal


def _loaded_writer(spec: ServeSpec) -> Any:
    if spec.deployment_id is None or spec.log_path is None:
        return None
    path, deployment_id = Path(spec.log_path), spec.deployment_id

    def write(models: ModelSet) -> None:
        from lepton_desktop.core.store import serving as serving_store
        from lepton_desktop.core.store.db import connect

        conn = connect(path)
        try:
            serving_store.update_deployment(conn, deployment_id, loaded=models.loaded())
        finally:
            conn.close()

    return write
