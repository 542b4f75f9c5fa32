"""The journal shipper waits while the servers write (up to MAX_LAG_S), and drain()
ships at once: on a real project file, with a real journal written by RequestJournal."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lepton_desktop.core.project import Project
from lepton_desktop.core.serving import journal
from lepton_desktop.core.serving.context import RequestContext
from lepton_desktop.core.store.db import connect


def _logged(path: Path) -> set[str]:
    """The request ids in the project's request log."""
    conn = connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT request_id FROM request_log")}
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
def busy(project: Path) -> Iterator[journal.RequestJournal]:
    """A server answering a request every 10 ms (its journal grows between any two of
    the shipper's passes, 0.25 s apart, unless this thread is starved that long)."""
    log = journal.RequestJournal(project, None, capture_inputs=False)
    stop = threading.Event()

    def answer() -> None:
        n = 0
        while not stop.is_set():
            _answer(log, n)
            n += 1
            time.sleep(0.01)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield log
    stop.set()
    thread.join()
    log.close()


@pytest.fixture
def shipper(project: Path) -> Iterator[journal.JournalShipper]:
    """The project's shipper, running its passes on its thread."""
    running = journal.JournalShipper(
        journal.journal_dir(project), lambda: connect(project), set, interval=0.25
    )
    running.start()
    yield running
    running.stop()


def _wait_for(done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.usefixtures("busy")
def test_a_busy_server_ships_at_most_max_lag_late(
    project: Path, shipper: journal.JournalShipper, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "MAX_LAG_S", 1.0)
    time.sleep(0.6)  # the journal grows at every pass: shipping waits
    assert _logged(project) == set()
    _wait_for(lambda: bool(_logged(project)), 5)
    assert _logged(project)  # past MAX_LAG_S it ships though requests keep coming


def test_drain_ships_what_was_answered_while_the_server_stays_busy(
    project: Path, busy: journal.RequestJournal, shipper: journal.JournalShipper,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(journal, "MAX_LAG_S", 60.0)
    time.sleep(0.6)
    assert _logged(project) == set()
    _answer(busy, 10**6)
    shipper.drain(timeout=5)
    assert f"r{10**6}" in _logged(project)


def test_an_idle_server_ships_at_the_next_pass(
    project: Path, shipper: journal.JournalShipper
) -> None:
    log = journal.RequestJournal(project, None, capture_inputs=False)
    try:
        for n in range(5):
            _answer(log, n)
        _wait_for(lambda: len(_logged(project)) == 5, 2)
        assert _logged(project) == {f"r{n}" for n in range(5)}
    finally:
        log.close()


def _segments(path: Path) -> int:
    """Segments of the request log's full-text index (FTS5's ``%_idx`` table)."""
    conn = connect(path)
    try:
        return int(
            conn.execute("SELECT COUNT(DISTINCT segid) FROM request_log_fts_idx").fetchone()[0]
        )
    finally:
        conn.close()


def _automerge(path: Path) -> int | None:
    """The request log index's ``automerge`` setting kept in the file (None: the default)."""
    conn = connect(path)
    try:
        found = conn.execute(
            "SELECT v FROM request_log_fts_config WHERE k = 'automerge'"
        ).fetchone()
        return None if found is None else int(found[0])
    finally:
        conn.close()


def _running_shipper(project: Path) -> journal.JournalShipper:
    shipper = journal.JournalShipper(
        journal.journal_dir(project), lambda: connect(project), set, interval=0.05
    )
    shipper.start()
    return shipper


def test_the_search_index_is_merged_when_the_servers_idle_not_at_every_batch(
    project: Path,
) -> None:
    first = _running_shipper(project)  # a server's shipper turns FTS5's own merging off
    _wait_for(lambda: _automerge(project) == 0, 5)
    first.stop()
    assert _automerge(project) == 0  # kept in the file: other writers do not merge either
    log = journal.RequestJournal(project, None, capture_inputs=False)
    batches = journal.JournalShipper(journal.journal_dir(project), lambda: connect(project), set)
    try:
        for batch in range(6):  # six shipping passes: six segments, none merged meanwhile
            for n in range(batch * 10, batch * 10 + 10):
                _answer(log, n)
            assert batches.ship() == 10
        batches.stop()
        unmerged = _segments(project)
        assert unmerged >= 6
        idle = _running_shipper(project)  # nothing to ship: its passes merge
        _wait_for(lambda: _segments(project) < unmerged, 10)
        idle.stop()
        assert _segments(project) < unmerged
        with Project.open(project) as opened:
            for first_and_last in ("r0", "r59"):  # rows of the first batch and of the last
                found = opened.serving.list_requests(search=first_and_last)
                assert [r.request_id for r in found] == [first_and_last]
            opened.conn.execute(
                "INSERT INTO request_log_fts (request_log_fts) VALUES ('integrity-check')"
            )
    finally:
        log.close()
