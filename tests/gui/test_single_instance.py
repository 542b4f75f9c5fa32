"""One app, many files: a second launch hands its file to the running app (two real
processes: the app here under pytest-qt, the launch a subprocess), and a project that
another app edits opens read-only, with a banner, refusing writes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QDir
from PySide6.QtNetwork import QLocalSocket
from pytestqt.qtbot import QtBot

from lepton_desktop.core.errors import LeptonError
from lepton_desktop.gui.app import create_app
from lepton_desktop.gui.instance import (
    INSTANCE_ENV,
    MAX_REQUEST_BYTES,
    InstanceServer,
)
from lepton_desktop.gui.main_window import MainWindow
from lepton_desktop.gui.session import Changes
from lepton_desktop.gui.settings import AppSettings
from lepton_desktop.gui.windows import WindowManager
from tests.core.project.test_project_lock import HOLDER
from tests.helpers import snapshot

pytestmark = pytest.mark.gui
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def running(qtbot: QtBot, settings: AppSettings, tmp_path: Path) -> Iterator[InstanceServer]:
    """The running app's side: its window manager and its single-instance server."""
    create_app()
    manager = WindowManager(settings)
    server = InstanceServer(f"lepton-test-{os.getpid()}-{tmp_path.name}", manager)
    server.openRequested.connect(lambda path, demo: manager.open_project_path(path))
    assert server.listen()
    yield server
    server.close()
    for window in list(manager.windows):
        window.close()
    qtbot.waitUntil(lambda: not manager.windows)


def _launch(qtbot: QtBot, server: InstanceServer, *args: object) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), QT_QPA_PLATFORM="offscreen",
               **{INSTANCE_ENV: server.name})  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "lepton_desktop", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    # The running app answers from its event loop, which waitUntil keeps turning.
    qtbot.waitUntil(lambda: proc.poll() is not None, timeout=60_000)
    out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _manager(server: InstanceServer) -> WindowManager:
    return server.parent()


@pytest.mark.slow
def test_a_second_launch_hands_its_file_to_the_running_app(
    qtbot: QtBot, running: InstanceServer, tmp_project: Path, tmp_path: Path
) -> None:
    manager = _manager(running)
    done = _launch(qtbot, running, tmp_project)
    assert done.returncode == 0 and "handed over" in done.stderr, done.stderr
    qtbot.waitUntil(lambda: manager.window_of(tmp_project.resolve()) is not None)
    window = manager.window_of(tmp_project.resolve())
    qtbot.waitUntil(lambda: window.session is not None and window.session.is_open, timeout=20_000)
    assert window.session.read_only_reason is None  # this app edits it
    # The same file again: the window that has it comes forward, no second window.
    assert _launch(qtbot, running, tmp_project).returncode == 0
    assert manager.windows == [window]
    # Another project: a window of its own.
    other = tmp_path / "other.lepton"
    other.write_bytes(tmp_project.read_bytes())
    assert _launch(qtbot, running, other).returncode == 0
    qtbot.waitUntil(lambda: len(manager.windows) == 2)
    second = manager.window_of(other.resolve())
    assert second is not None and second is not window


def test_a_request_too_long_is_dropped_and_opens_nothing(
    qtbot: QtBot, running: InstanceServer
) -> None:
    opened: list[object] = []
    running.openRequested.connect(lambda *request: opened.append(request))
    socket = QLocalSocket()
    socket.connectToServer(running.name)
    assert socket.waitForConnected(5000)
    socket.write(b"x" * (MAX_REQUEST_BYTES + 1))  # never a newline
    qtbot.waitUntil(lambda: socket.state() == QLocalSocket.LocalSocketState.UnconnectedState,
                    timeout=10_000)  # fmt: skip
    assert opened == [] and not _manager(running).windows


def test_a_socket_left_by_a_crashed_instance_is_taken_over(tmp_path: Path) -> None:
    create_app()
    name = f"lepton-test-stale-{os.getpid()}"
    stale = Path(QDir.tempPath()) / name
    stale.write_bytes(b"")  # what a killed instance leaves behind (nobody listens)
    server = InstanceServer(name)
    try:
        assert server.listen()
    finally:
        server.close()


def test_a_project_another_app_edits_opens_read_only_with_a_banner(
    qtbot: QtBot, window: MainWindow, tmp_project: Path
) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_project)],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        before = snapshot(tmp_project)
        window.open_path(tmp_project)
        qtbot.waitUntil(lambda: window.session is not None and window.session.is_open,
                        timeout=20_000)  # fmt: skip
        session = window.session
        assert f"process {holder.pid} on " in session.read_only_reason
        assert window.read_only_banner.isVisible()
        assert "Read-only" in window.read_only_banner.text
        assert "(read-only)" in window.windowTitle()
        errors: list[BaseException] = []
        session.command(lambda p: p.create_job("import", {"source": "x.csv", "name": "x"}),
                        Changes(jobs=True), on_error=errors.append)  # fmt: skip
        qtbot.waitUntil(lambda: bool(errors))
        assert isinstance(errors[0], LeptonError)
        assert "open read-only here" in str(errors[0]) and str(holder.pid) in str(errors[0])
        assert snapshot(tmp_project) == before
    finally:
        holder.kill()
        holder.wait(timeout=30)
    window.close_project()
    assert not window.read_only_banner.isVisible()
