"""ProjectSession: one DB thread, results on the GUI thread, job polling."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QObject
from pytestqt.qtbot import QtBot

from lepton_desktop.core.errors import DamagedProjectError, NotAProjectError, NotFoundError
from lepton_desktop.gui.session import Changes, ProjectSession

pytestmark = pytest.mark.gui


@pytest.fixture
def session(qtbot: QtBot, tmp_project: Path) -> Iterator[ProjectSession]:
    s = ProjectSession(tmp_project)
    with qtbot.waitSignal(s.opened, timeout=10_000):
        s.open()
    yield s
    s.close()


def test_queries_run_on_one_db_thread_and_answer_on_the_gui_thread(
    qtbot: QtBot, session: ProjectSession
) -> None:
    seen: dict[str, object] = {}

    def on_db_thread(project: object) -> str:
        seen["worker"] = threading.current_thread().name
        return "done"

    def on_done(result: str) -> None:
        seen["callback"] = threading.current_thread() is threading.main_thread()
        seen["result"] = result

    session.query(on_db_thread, on_done)
    session.query(lambda p: seen.setdefault("second", threading.current_thread().name))
    qtbot.waitUntil(lambda: "result" in seen and "second" in seen)
    assert seen["callback"] is True
    assert seen["result"] == "done"
    assert seen["worker"] == seen["second"]
    assert str(seen["worker"]).startswith("lepton-db")


def test_errors_reach_the_error_callback(qtbot: QtBot, session: ProjectSession) -> None:
    errors: list[BaseException] = []
    session.query(lambda p: p.job(12345), on_error=errors.append)
    qtbot.waitUntil(lambda: bool(errors))
    assert isinstance(errors[0], NotFoundError)


def test_unhandled_errors_are_signalled(qtbot: QtBot, session: ProjectSession) -> None:
    with qtbot.waitSignal(session.errorOccurred) as blocker:
        session.query(lambda p: p.dataset("missing"))
    assert isinstance(blocker.args[0], NotFoundError)


def test_callbacks_of_a_deleted_owner_are_skipped(qtbot: QtBot, session: ProjectSession) -> None:
    owner = QObject()
    called: list[int] = []
    session.query(lambda p: 1, called.append, owner=owner)
    owner.deleteLater()
    session.query(lambda p: 2, called.append)
    qtbot.waitUntil(lambda: called == [2])


def test_opening_a_non_project_fails_cleanly(qtbot: QtBot, tmp_path: Path) -> None:
    bad = tmp_path / "bad.lepton"
    bad.write_bytes(b"not a project" * 20)
    s = ProjectSession(bad)
    with qtbot.waitSignal(s.openFailed) as blocker:
        s.open()
    s.close()
    assert isinstance(blocker.args[0], NotAProjectError)
    assert bad.read_bytes() == b"not a project" * 20


def test_a_job_that_ends_emits_job_ended_and_changes(
    qtbot: QtBot, session: ProjectSession
) -> None:
    created: list[int] = []
    session.query(lambda p: p.create_job("import", {"name": "x"}), created.append)
    qtbot.waitUntil(lambda: bool(created))
    job_id = created[0]
    session.watch_job(job_id)
    qtbot.waitUntil(lambda: any(j.id == job_id for j in session.active_jobs))
    ended: list[object] = []
    changes: list[object] = []
    session.jobEnded.connect(ended.append)
    session.changed.connect(changes.append)
    session.jobs.cancel(job_id)  # a queued job is cancelled at once
    qtbot.waitUntil(lambda: bool(ended) and bool(changes), timeout=10_000)
    assert ended[0].id == job_id
    assert ended[0].status == "cancelled"
    assert changes[0] == Changes(datasets=True, jobs=True)


def _with_damaged_statistics(path: Path) -> bytes:
    """Import iris into ``path``, then flip a bit of its stored statistics (JSON)."""
    from lepton_desktop.core.project import Project
    from tests.conftest import SAMPLE_DATA

    with Project.open(path) as project:
        project.import_dataset(SAMPLE_DATA / "iris.csv", "iris", target="species")
    data = bytearray(path.read_bytes())
    data[data.find(b'{"count": ') + 1] ^= 1  # '"' -> '#': no longer JSON
    path.write_bytes(bytes(data))
    return bytes(data)


def test_a_damaged_project_is_reported_as_damaged_not_as_a_json_error(
    qtbot: QtBot, tmp_project: Path
) -> None:
    damaged = _with_damaged_statistics(tmp_project)
    s = ProjectSession(tmp_project)
    with qtbot.waitSignal(s.opened, timeout=10_000):
        s.open()  # the schema is sound: the damage shows when the records are read
    errors: list[BaseException] = []
    s.query(lambda p: p.datasets(), on_error=errors.append)
    qtbot.waitUntil(lambda: bool(errors), timeout=10_000)
    s.close()
    assert isinstance(errors[0], DamagedProjectError)
    assert "the project file is damaged (dataset_columns.stats of row" in str(errors[0])
    assert tmp_project.read_bytes() == damaged
