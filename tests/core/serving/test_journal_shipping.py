"""The journal shipper waits while the servers write (up to MAX_LAG_S), and drain()
ships at once: on a real project file, with a real journal written by RequestJournal."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from lepton_desktop.core.project import Project
from lepton_desktop.core.serving import journal
from lepton_desktop.core.serving.context import RequestContext
from lepton_desktop.core.store.db import connect


def _logged(path: Path) -> int:
    conn = connect(path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM request_log").fetchone()[0])
    finally:
        conn.close()


def _answer(log: journal.RequestJournal, n: int) -> None:
    ctx = RequestContext(request_id=f"r{n}", method="POST", path="/predict", headers=[])
    ctx.status, ctx.n_rows = 200, 1
    log.request(ctx, time.time(), 1.0)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "p.lepton"
    Project.create(path).close()
    return path


@pytest.fixture
def busy(project: Path):  # a server answering a request every 20 ms
    log = journal.RequestJournal(project, None, capture_inputs=False)
    stop = threading.Event()

    def answer() -> None:
        n = 0
        while not stop.is_set():
            _answer(log, n)
            n += 1
            time.sleep(0.02)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield log
    stop.set()
    thread.join()
    log.close()


def _shipper(project: Path) -> journal.JournalShipper:
    return journal.JournalShipper(
        journal.journal_dir(project), lambda: connect(project), set, interval=0.05
    )


def test_a_busy_server_ships_at_most_max_lag_late(
    project: Path, busy: journal.RequestJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "MAX_LAG_S", 1.0)
    shipper = _shipper(project)
    shipper.start()
    try:
        time.sleep(0.6)  # the journal grows at every pass: shipping waits
        assert _logged(project) == 0
        deadline = time.monotonic() + 5
        while _logged(project) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _logged(project) > 0  # past MAX_LAG_S it ships though requests keep coming
    finally:
        shipper.stop()


def test_drain_ships_what_was_answered_while_the_server_stays_busy(
    project: Path, busy: journal.RequestJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "MAX_LAG_S", 60.0)
    shipper = _shipper(project)
    shipper.start()
    try:
        time.sleep(0.3)
        assert _logged(project) == 0
        _answer(busy, 10**6)
        shipper.drain(timeout=5)
        conn = connect(project)
        try:
            ids = {r[0] for r in conn.execute("SELECT request_id FROM request_log")}
        finally:
            conn.close()
        assert f"r{10**6}" in ids
    finally:
        shipper.stop()


def test_an_idle_server_ships_at_the_next_pass(project: Path) -> None:
    log = journal.RequestJournal(project, None, capture_inputs=False)
    shipper = _shipper(project)
    shipper.start()
    try:
        for n in range(5):
            _answer(log, n)
        deadline = time.monotonic() + 2
        while _logged(project) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _logged(project) == 5
    finally:
        log.close()
        shipper.stop()
