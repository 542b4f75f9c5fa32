"""A server killed under load: every request a client got an answer to is logged.

Each server process journals a request before it answers it (``core/serving/journal``)
and the next opening of the project stores what a killed server left unshipped.
So after any kill, rows logged >= answers received; when only the supervisor dies, its
server processes finish what is in flight and stop, and the two are equal.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from lepton_desktop.core.project import Project
from lepton_desktop.core.serving.journal import journal_dir
from tests.serving_factory import copy_project, rows, serving_project

__all__ = ["serving_project"]
pytestmark = pytest.mark.slow

CLIENTS = 8


@pytest.fixture
def project(serving_project: Path, tmp_path: Path) -> Iterator[Path]:
    yield copy_project(serving_project, tmp_path)


def _serve(project: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "lepton_desktop", "serve", str(project), "--port", "0",
         "--model", "iris:2", "--workers", "2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    match = re.search(r"http://127\.0\.0\.1:\d+", process.stdout.readline())
    assert match is not None, "the server printed no address"
    return process, match.group(0)


class Load:
    """Clients posting predictions as fast as they can until the server goes away."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answered = 0
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client) for _ in range(CLIENTS)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for thread in self._threads:
            thread.join(timeout=60)

    def _client(self) -> None:
        body = {"records": rows()[:2]}
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while True:
                try:
                    answer = client.post("/predict", json=body)
                except httpx.HTTPError:
                    return  # the server is gone
                if answer.status_code != 200:
                    return
                with self._lock:
                    self.answered += 1


def _kill_when_busy(load: Load, victims: list[int]) -> None:
    deadline = time.monotonic() + 60
    while load.answered < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in victims:
        os.kill(pid, signal.SIGKILL)


def _logged_predictions(project: Path) -> int:
    with Project.open(project) as opened:  # opening ships what the dead servers left
        (deployment,) = opened.serving.list()
        assert opened.integrity_ok()
        assert deployment.status in ("stopped", "interrupted")
        logged = opened.serving.requests_since(deployment.id, 0, limit=1_000_000)
    return sum(r.path == "/predict" for r in logged)


def _wait_gone(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).wait(timeout=30)


def test_supervisor_killed_every_answer_is_logged(project: Path, cli_env: dict[str, str]) -> None:
    process, url = _serve(project, cli_env)
    servers = [c.pid for c in psutil.Process(process.pid).children()]
    with Load(url) as load:
        _kill_when_busy(load, [process.pid])
        process.wait(timeout=30)
        _wait_gone(servers)  # they stop by themselves when their supervisor dies
    assert load.answered >= 300
    assert journal_dir(project).is_dir()  # the supervisor could not ship it all
    assert _logged_predictions(project) == load.answered
    assert not list(journal_dir(project).glob("*.journal"))  # shipped, then deleted


def test_every_process_killed_nothing_answered_is_lost(
    project: Path, cli_env: dict[str, str]
) -> None:
    process, url = _serve(project, cli_env)
    servers = [c.pid for c in psutil.Process(process.pid).children()]
    with Load(url) as load:
        _kill_when_busy(load, [*servers, process.pid])
        process.wait(timeout=30)
    logged = _logged_predictions(project)
    # A row is journaled before its answer goes out, so a request killed between the
    # two is logged but never answered: at most one per client.
    assert load.answered <= logged <= load.answered + CLIENTS


class CountingLoad:
    """Clients that keep going through failures and count them."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answered = 0
        self.failed = 0
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client) for _ in range(CLIENTS)]

    def __enter__(self) -> CountingLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _client(self) -> None:
        body = {"records": rows()[:2]}
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self.stop.is_set():
                try:
                    ok = client.post("/predict", json=body).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with self._lock:
                    self.answered += ok
                    self.failed += not ok


def test_a_killed_server_process_is_restarted_and_only_its_requests_in_flight_fail(
    project: Path, cli_env: dict[str, str]
) -> None:
    process, url = _serve(project, cli_env)  # two server processes
    victim, *_ = _server_processes(process.pid)
    with CountingLoad(url) as load:
        while load.answered < 200:
            time.sleep(0.05)
        os.kill(victim, signal.SIGKILL)
        before = load.answered
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(_server_processes(process.pid)) < 2:
            time.sleep(0.1)
        time.sleep(1.0)  # the new process answers too
        assert load.answered > before
    assert load.failed <= CLIENTS  # at most the requests in flight on the killed process
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0
    with Project.open(project) as opened:
        report = opened.monitor("all")
    assert report["server"]["restarts"] == 1
    kinds = [e["kind"] for e in report["server"]["events"]]
    assert kinds == ["exited", "restarted"]
    assert "server process" in report["server"]["events"][0]["detail"]


def _server_processes(supervisor: int) -> list[int]:
    """The supervisor's live server processes (not multiprocessing's resource tracker).

    A killed one stays a zombie until the supervisor reaps it: not a server any more.
    """
    servers = []
    for child in psutil.Process(supervisor).children():
        with contextlib.suppress(psutil.ZombieProcess, psutil.NoSuchProcess):
            if "resource_tracker" not in " ".join(child.cmdline()):
                servers.append(child.pid)
    return servers
