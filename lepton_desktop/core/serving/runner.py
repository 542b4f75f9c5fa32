"""Running the server: a supervisor process and its server processes.

:class:`ServerRunner` binds the socket itself (port 0 picks a free one, and a port in
use is a clear error rather than uvicorn's exit), starts ``workers`` server processes
(:mod:`.child`) sharing it, and stays their supervisor: it restarts one that dies
(with backoff, so a model that crashes at once does not spin), ships their request
journals into the project (:mod:`.journal`), and stops them gracefully. The
supervisor never imports torch and never answers a request, so the request log's
writes never compete with an answer for a core or for Python's lock. The ``serve``
job of a deployment (:mod:`lepton_desktop.workers.serving`) runs one; so does
``lepton-desktop serve BUNDLE``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lepton_desktop.core.errors import LeptonError
from lepton_desktop.core.processes import isolate_children

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext
    from lepton_desktop.core.inference.predictor import ModelParts
    from lepton_desktop.core.serving.journal import JournalShipper

log = logging.getLogger(__name__)
#: Restarts of a server process wait this long, doubling per restart up to the cap.
RESTART_DELAY_S = 0.5
RESTART_DELAY_MAX_S = 30.0
#: A process that ran this long before dying starts its backoff over.
HEALTHY_AFTER_S = 60.0


@dataclasses.dataclass
class ServeSpec:
    """Everything a server process needs; plain JSON, so worker processes get it too.

    ``project``: serve its models (``models``: names or refs; empty: all) and follow
    its registry. ``bundle``: serve an exported bundle instead. ``log_path``: the
    project file that receives the request log (None: no log). ``token``: the digest of
    the bearer token (``security.token_digest``), never the token itself.
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
    watch_interval: float = 1.0

    @property
    def workers(self) -> int:
        """uvicorn worker processes."""
        return int(self.options.get("workers", 1))


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


@dataclasses.dataclass
class _Slot:
    """One server process the supervisor keeps running."""

    index: int
    served: Any  # a shared integer (multiprocessing.RawValue)
    ready: Any  # set by the process once it listens (multiprocessing.Event)
    process: Any = None
    started_at: float = 0.0
    restarts: int = 0
    next_start: float = 0.0


class ServerRunner:
    """One server: start, supervise, stop (see the module docstring).

    Args:
        spec: what to serve and how.
        parts: models already read (a bundle), instead of the spec's source.
    """

    def __init__(self, spec: ServeSpec, parts: Sequence[ModelParts] | None = None) -> None:
        self.spec = spec
        self._parts = list(parts) if parts is not None else None
        self._sock: socket.socket | None = None
        self._context = multiprocessing.get_context("spawn")
        self._slots: list[_Slot] = []
        self._shipper: JournalShipper | None = None
        self._supervisor: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._metrics_dir: str | None = None
        self._previous_metrics_dir: str | None = None
        self.port = 0
        self.url = ""
        #: Why the server gave up (None while it runs or after a clean stop).
        self.failure: str | None = None
        #: What the supervisor did, oldest first: ``(unix time, kind, detail)`` with kind
        #: ``exited`` or ``restarted`` (the serve job records them in the project).
        self.events: list[tuple[float, str, str]] = []

    # -- starting ------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> str:
        """Bind, start the server processes, return the URL once one answers.

        Raises:
            InvalidOptionError: another address than this machine's without a token.
            LeptonError: the address cannot be bound, a model cannot be loaded, or the
                server did not come up.
        """
        from lepton_desktop.core.serving.manager import check_address

        check_address(self.spec.host, self.spec.port, self.spec.token)
        if self.spec.project is not None and self._parts is None:
            self._check_refs()  # a clear error here, before any process starts
        self._sock = bind(self.spec.host, self.spec.port)
        self.port = self._sock.getsockname()[1]
        self.url = url_of(self.spec.host, self.port)
        isolate_children()  # the server processes are ``python -c`` in the user's folder
        try:
            self._metrics_dir = tempfile.mkdtemp(prefix="lepton-metrics-")
            self._previous_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = self._metrics_dir
            self._start_shipper()
            for index in range(max(1, self.spec.workers)):
                slot = _Slot(index, self._context.RawValue("q", 0), self._context.Event())
                self._slots.append(slot)
                self._launch(slot)
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        self._supervisor = threading.Thread(
            target=self._supervise, name="serve-supervisor", daemon=True
        )
        self._supervisor.start()
        return self.url

    def _check_refs(self) -> None:
        from lepton_desktop.core.store import models as model_store
        from lepton_desktop.core.store.files import open_file

        conn = open_file(Path(self.spec.project or "")).conn
        try:
            for ref in self.spec.models:
                model_store.resolve(conn, ref)
            if not self.spec.models and not model_store.list_versions(
                conn, include_archived=False
            ):
                raise LeptonError("no model to serve: train or import a model first")
        finally:
            conn.close()

    def _start_shipper(self) -> None:
        if self.spec.log_path is None:
            return
        from lepton_desktop.core.serving.journal import JournalShipper, journal_dir
        from lepton_desktop.core.store.db import connect

        path = Path(self.spec.log_path)
        self._shipper = JournalShipper(journal_dir(path), lambda: connect(path), self._pids)
        self._shipper.start()  # its first pass ships what a killed server left

    def _launch(self, slot: _Slot) -> None:
        from lepton_desktop.core.serving.child import child_main

        payload = json.dumps(dataclasses.asdict(self.spec))
        slot.ready.clear()
        slot.process = self._context.Process(
            target=child_main,
            args=(
                payload,
                self._sock,
                self._parts,
                slot.served,
                slot.ready,
                slot.index,
                os.getpid(),
            ),
            name=f"lepton-serve-{slot.index}",
            daemon=True,  # a script that never calls stop() still exits (and they with it)
        )
        slot.process.start()
        slot.started_at = time.monotonic()

    def _wait_ready(self, timeout: float) -> None:
        # Every process says when it listens: no probe request (it would be logged).
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(s.ready.is_set() for s in self._slots):
                return
            dead = [s for s in self._slots if not s.process.is_alive()]
            if dead:
                raise LeptonError(
                    f"the server's process exited while starting (code {dead[0].process.exitcode};"
                    " its error is printed above)"
                )
            time.sleep(0.02)
        raise LeptonError(f"the server on {self.url} did not start within {timeout:.0f} s")

    # -- supervising ---------------------------------------------------------------------

    def _supervise(self) -> None:
        while not self._stopping.wait(0.2):
            with self._lock:
                for slot in self._slots:
                    if not self._stopping.is_set():
                        self._keep_running(slot)

    def _keep_running(self, slot: _Slot) -> None:
        now = time.monotonic()
        if slot.process.is_alive():
            return
        if slot.next_start == 0.0:  # it just died: plan its restart
            ran = now - slot.started_at
            if ran >= HEALTHY_AFTER_S:
                slot.restarts = 0
            delay = min(RESTART_DELAY_MAX_S, RESTART_DELAY_S * 2**slot.restarts)
            slot.next_start = now + delay
            detail = (f"server process {slot.index} exited (code {slot.process.exitcode}) "
                      f"after {ran:.1f} s; restarting in {delay:.1f} s")  # fmt: skip
            log.warning(detail)
            self.events.append((time.time(), "exited", detail))
            return
        if now >= slot.next_start:
            slot.restarts += 1
            slot.next_start = 0.0
            self._launch(slot)
            self.events.append((time.time(), "restarted", f"server process {slot.index} "
                                f"restarted (restart {slot.restarts})"))  # fmt: skip

    def _pids(self) -> set[int]:
        return {s.process.pid for s in self._slots if s.process is not None and s.process.pid}

    # -- watching and stopping -----------------------------------------------------------

    def alive(self) -> bool:
        """Whether the server still runs (its supervisor, restarting what dies)."""
        return self._supervisor is not None and self._supervisor.is_alive()

    @property
    def served(self) -> int:
        """Requests answered by every server process so far."""
        return sum(int(s.served.value) for s in self._slots)

    @property
    def restarts(self) -> int:
        """How often a server process was restarted."""
        return sum(s.restarts for s in self._slots)

    @property
    def logged(self) -> int:
        """Request rows shipped into the project so far."""
        return self._shipper.shipped if self._shipper is not None else 0

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until the requests answered so far are in the project's request log."""
        if self._shipper is not None:
            self._shipper.drain(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (answers in flight are finished), then ship the last rows."""
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout)
        with self._lock:
            for slot in self._slots:
                if slot.process is not None and slot.process.is_alive():
                    slot.process.terminate()  # SIGTERM: uvicorn finishes what is in flight
            for slot in self._slots:
                if slot.process is not None:
                    slot.process.join(timeout)
                    if slot.process.is_alive():
                        slot.process.kill()
                        slot.process.join()
        if self._shipper is not None:
            self._shipper.stop()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._drop_metrics_dir()

    def _drop_metrics_dir(self) -> None:
        if self._metrics_dir is None:
            return
        shutil.rmtree(self._metrics_dir, ignore_errors=True)
        if self._previous_metrics_dir is None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        else:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = self._previous_metrics_dir
        self._metrics_dir = None

    def __enter__(self) -> ServerRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


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
