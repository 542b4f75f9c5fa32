"""One app, many files: a second launch hands its file to the instance already running.

The first GUI process of a user listens on a local socket (:class:`InstanceServer`:
a Unix socket private to the user, a named pipe on Windows) named per user
(:func:`instance_name`). A later ``lepton-desktop FILE`` connects first
(:func:`hand_over`); when someone answers, it sends one JSON line, waits for ``ok``
and exits, and the running instance opens the file (a new window, or the window that
already shows it). A socket left behind by a crashed instance answers nobody: the
next instance removes it and listens in its place.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

#: Overrides the socket's name (tests, or two installations that must not share one).
INSTANCE_ENV = "LEPTON_INSTANCE"
#: The most a request may hold: one line of JSON naming a file (longer: refused).
MAX_REQUEST_BYTES = 64 * 1024
#: How long a second launch waits for the running instance at each step.
HAND_OVER_TIMEOUT_MS = 3000


def instance_name() -> str:
    """The socket's name: one per user (``LEPTON_INSTANCE`` overrides it)."""
    override = os.environ.get(INSTANCE_ENV)
    if override:
        return override
    user = str(os.getuid()) if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return f"lepton-desktop-{user}"


def hand_over(path: Path | None, demo: bool, name: str) -> bool:
    """Ask a running instance to open ``path`` (or the demo, or just to come forward).

    Blocks for at most a few seconds: this process has no window yet, and exits
    as soon as the running instance has said ``ok``.

    Returns:
        True when an instance took the request; False when none runs (or it did not
        answer in time), and this process should become the instance itself.
    """
    socket = QLocalSocket()
    socket.connectToServer(name)
    if not socket.waitForConnected(HAND_OVER_TIMEOUT_MS):
        return False
    request = {"open": str(path.resolve()) if path is not None else None, "demo": demo}
    socket.write(json.dumps(request).encode("utf-8") + b"\n")
    answered = socket.waitForBytesWritten(HAND_OVER_TIMEOUT_MS) and _wait_for_line(socket)
    socket.abort()
    return answered


def _wait_for_line(socket: QLocalSocket) -> bool:
    while not socket.canReadLine():
        if not socket.waitForReadyRead(HAND_OVER_TIMEOUT_MS):
            return False
    return bytes(socket.readLine().data()).strip() == b"ok"


class InstanceServer(QObject):
    """Listens for later launches; emits what they ask to open.

    Args:
        name: the socket's name (:func:`instance_name`).
        parent: the owner.
    """

    openRequested = Signal(object, bool)  # Path | None, demo

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self.server.newConnection.connect(self._on_connection)
        self._buffers: dict[QLocalSocket, bytes] = {}

    def listen(self) -> bool:
        """Start listening; a stale socket of a crashed instance is removed first.

        Only called after :func:`hand_over` found nobody answering, so a socket file
        that is there belongs to no running instance.
        """
        if self.server.listen(self.name):
            return True
        QLocalServer.removeServer(self.name)
        return self.server.listen(self.name)

    def close(self) -> None:
        """Stop listening (the socket file is removed)."""
        self.server.close()

    def _on_connection(self) -> None:
        while self.server.hasPendingConnections():
            socket = self.server.nextPendingConnection()
            self._buffers[socket] = b""
            socket.readyRead.connect(lambda s=socket: self._on_ready(s))
            socket.disconnected.connect(lambda s=socket: self._forget(s))

    def _on_ready(self, socket: QLocalSocket) -> None:
        data = self._buffers.get(socket, b"") + bytes(socket.readAll().data())
        if len(data) > MAX_REQUEST_BYTES:
            self._forget(socket)
            socket.abort()  # not a launch of ours: nothing is read further
            return
        self._buffers[socket] = data
        if b"\n" not in data:
            return
        request = _parse(data.split(b"\n", 1)[0])
        socket.write(b"ok\n" if request is not None else b"refused\n")
        socket.flush()
        socket.disconnectFromServer()
        if request is not None:
            self.openRequested.emit(*request)

    def _forget(self, socket: QLocalSocket) -> None:
        if self._buffers.pop(socket, None) is not None:
            socket.deleteLater()


def _parse(line: bytes) -> tuple[Path | None, bool] | None:
    """``(path, demo)`` from a request line; None for anything malformed."""
    try:
        request = json.loads(line)
    except ValueError:
        return None
    if not isinstance(request, dict):
        return None
    path, demo = request.get("open"), request.get("demo", False)
    if not (path is None or isinstance(path, str)) or not isinstance(demo, bool):
        return None
    return (Path(path) if path else None), demo
