"""Running the server: uvicorn in this process (or N worker processes) until stopped.

:class:`ServerRunner` binds the socket itself (port 0 picks a free one, and a port in
use is a clear error rather than uvicorn's exit), loads the models, and runs uvicorn
in a thread; with ``workers > 1`` it starts that many processes sharing the socket,
each with its own models, batchers and log writer. The ``serve`` job of a deployment
(:mod:`lepton_desktop.workers.serving`) runs one; so does ``lepton-desktop serve
BUNDLE``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lepton_desktop.core.errors import LeptonError

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext
    from lepton_desktop.core.inference.predictor import ModelParts
    from lepton_desktop.core.serving.app import ASGIApp
    from lepton_desktop.core.serving.logwriter import RequestLogWriter
    from lepton_desktop.core.serving.models import ModelSet

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ServeSpec:
    """Everything a server process needs; plain JSON, so worker processes get it too.

    ``project``: serve its models (``models``: names or refs; empty: all) and follow
    its registry. ``bundle``: serve an exported bundle instead. ``log_path``: the
    project file that receives the request log (None: no log).
    """

    project: str | None = None
    bundle: str | None = None
    models: list[str] = dataclasses.field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    deployment_id: int | None = None
    log_path: str | None = None

    @property
    def workers(self) -> int:
        """uvicorn worker processes."""
        return int(self.options.get("workers", 1))


def load_models(spec: ServeSpec, parts: Sequence[ModelParts] | None = None) -> ModelSet:
    """The spec's models: from its project, its bundle, or ``parts`` already read."""
    from lepton_desktop.core.serving.models import ModelSet

    if parts is not None:
        return ModelSet.from_parts(parts)
    if spec.bundle is not None:
        from lepton_desktop.core.inference.bundle import read_bundle

        return ModelSet.from_parts(read_bundle(Path(spec.bundle)))
    if spec.project is None:
        raise LeptonError("nothing to serve: give a project or a bundle")
    return ModelSet.from_project(Path(spec.project), spec.models)


def build_app(spec: ServeSpec, models: ModelSet) -> tuple[ASGIApp, RequestLogWriter | None]:
    """The app for ``models`` with the spec's options, and its log writer if any."""
    from lepton_desktop.core.serving.app import ServeOptions, create_app
    from lepton_desktop.core.serving.logwriter import RequestLogWriter

    writer = None
    if spec.log_path is not None:
        writer = RequestLogWriter(Path(spec.log_path), spec.deployment_id)
    options = ServeOptions.from_options(spec.options, spec.token)
    return create_app(models, options, writer), writer


def bind(host: str, port: int) -> socket.socket:
    """A bound socket for ``host:port`` (0: any free port).

    Raises:
        LeptonError: the address cannot be bound (in use, not this machine's).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise LeptonError(f"--host {host}: unknown address ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    # proto must say TCP: asyncio turns Nagle off (TCP_NODELAY) only on sockets that do,
    # and with Nagle on, every answer waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise LeptonError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def url_of(host: str, port: int) -> str:
    """``http://host:port`` (IPv6 in brackets)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _torch_threads(workers: int) -> None:
    # Throughput comes from batching and worker processes; a small model's forward
    # pass gains nothing from more threads, which would fight the event loop.
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // (2 * workers)))


def _uvicorn_config(app: Any) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
        server_header=False,
        lifespan="off",
    )


class ServerRunner:
    """One server: start, watch, stop (see the module docstring).

    Args:
        spec: what to serve and how.
        parts: models already read (a bundle), instead of the spec's source.
    """

    def __init__(self, spec: ServeSpec, parts: Sequence[ModelParts] | None = None) -> None:
        self.spec = spec
        self._parts = parts
        self.models: ModelSet | None = None
        self.app: ASGIApp | None = None
        self.writer: RequestLogWriter | None = None
        self._sock: socket.socket | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._children: list[Any] = []
        self._metrics_dir: str | None = None
        self.port = 0
        self.url = ""

    # -- starting ------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> str:
        """Bind, load, serve; return the URL once the server answers.

        Raises:
            InvalidOptionError: another address than this machine's without a token.
            LeptonError: the address cannot be bound, a model cannot be loaded, or the
                server did not come up.
        """
        from lepton_desktop.core.serving.manager import check_address

        check_address(self.spec.host, self.spec.port, self.spec.token)
        self._sock = bind(self.spec.host, self.spec.port)
        self.port = self._sock.getsockname()[1]
        self.url = url_of(self.spec.host, self.port)
        try:
            if self.spec.workers > 1:
                self._start_children(timeout)
            else:
                self._start_thread(timeout)
        except BaseException:
            self.stop()
            raise
        return self.url

    def _start_thread(self, timeout: float) -> None:
        import uvicorn

        _torch_threads(1)
        self.models = load_models(self.spec, self._parts)
        self.app, self.writer = build_app(self.spec, self.models)
        self._server = uvicorn.Server(_uvicorn_config(self.app))
        sock = self._sock
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise LeptonError(f"the server on {self.url} did not start")
            time.sleep(0.01)

    def _start_children(self, timeout: float) -> None:
        # The parent only checks the models exist (cheaply); each child loads its own.
        if self.spec.project is not None and self._parts is None:
            self._check_refs()
        self._metrics_dir = tempfile.mkdtemp(prefix="lepton-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = self._metrics_dir
        context = multiprocessing.get_context("spawn")
        payload = json.dumps(dataclasses.asdict(self.spec))
        for index in range(self.spec.workers):
            child = context.Process(
                target=child_main, args=(payload, self._sock), name=f"lepton-serve-{index}"
            )
            child.start()
            self._children.append(child)
        self._wait_ready(timeout)

    def _check_refs(self) -> None:
        from lepton_desktop.core.store import models as model_store
        from lepton_desktop.core.store.files import open_file

        conn = open_file(Path(self.spec.project or "")).conn
        try:
            for ref in self.spec.models:
                model_store.resolve(conn, ref)
        finally:
            conn.close()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        local = url_of("127.0.0.1", self.port) if self.spec.host == "0.0.0.0" else self.url
        request = urllib.request.Request(local + "/v2/health/ready")
        while time.monotonic() < deadline:
            if not any(c.is_alive() for c in self._children):
                raise LeptonError("the server's worker processes exited while starting")
            try:
                with urllib.request.urlopen(request, timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise LeptonError(f"the server on {self.url} did not start within {timeout:.0f} s")

    # -- watching and stopping -----------------------------------------------------------

    def alive(self) -> bool:
        """Whether the server still runs."""
        if self._thread is not None:
            return self._thread.is_alive()
        return any(c.is_alive() for c in self._children)

    @property
    def served(self) -> int:
        """Requests answered (this process's server; 0 with worker processes)."""
        if self.app is None:
            return 0
        from lepton_desktop.core.serving.app import app_state

        return app_state(self.app).served

    def loaded(self) -> list[dict[str, Any]]:
        """The loaded models, for the deployment row."""
        if self.models is not None:
            return self.models.loaded()
        return [{"name": ref} for ref in self.spec.models]

    def stop(self, timeout: float = 10.0) -> None:
        """Shut down gracefully (answers in flight are finished), then write the log."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        for child in self._children:
            child.terminate()  # SIGTERM: uvicorn finishes what is in flight
        for child in self._children:
            child.join(timeout)
            if child.is_alive():
                child.kill()
        if self.models is not None:
            self.models.close()
        if self.writer is not None:
            self.writer.close()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._metrics_dir is not None:
            shutil.rmtree(self._metrics_dir, ignore_errors=True)
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            self._metrics_dir = None

    def follow_registry(self, on_change: Any = None, interval: float = 1.0) -> None:
        """Pick up new versions and moved aliases while serving (projects only)."""
        if self.models is not None:
            self.models.watch(interval, on_change=on_change)

    def __enter__(self) -> ServerRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def child_main(payload: str, sock: socket.socket) -> None:
    """A worker process of a multi-process server: load, serve until SIGTERM."""
    import uvicorn

    spec = ServeSpec(**json.loads(payload))
    _torch_threads(spec.workers)
    models = load_models(spec)
    if spec.project is not None:
        models.watch()
    app, writer = build_app(spec, models)
    server = uvicorn.Server(_uvicorn_config(app))

    def stop(signum: int, frame: object) -> None:
        server.should_exit = True

    # uvicorn in the main thread would re-raise SIGTERM after its shutdown and die
    # before the log writer wrote its last rows; in a thread it leaves signals to us.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn")
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.5)
    finally:
        models.close()
        if writer is not None:
            writer.close()


def spec_for_deployment(ctx: ProjectContext, deployment_id: int) -> ServeSpec:
    """The spec of a deployment recorded in the project."""
    from lepton_desktop.core.store import serving as serving_store

    deployment = serving_store.get_deployment(ctx.conn, deployment_id)
    return ServeSpec(
        project=str(ctx.path),
        models=list(deployment.models),
        host=deployment.host,
        port=deployment.port,
        token=deployment.token,
        options=dict(deployment.options),
        deployment_id=deployment.id,
        log_path=str(ctx.path),
    )
