"""Forgetting served requests, secure_delete, and a copy of a project for sharing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lepton_desktop.core.errors import InvalidOptionError, LeptonError, NotFoundError
from lepton_desktop.core.project import Project
from lepton_desktop.core.store import serving as serving_store
from lepton_desktop.core.store.db import connect
from tests.helpers import snapshot, write_csv
from tests.request_log_factory import NEW, logged_project

#: An input nobody else sends: its bytes must be gone from the file once forgotten.
SECRET = "jane.secret.doe@example.org"


@pytest.fixture
def logged(tmp_path: Path) -> Path:
    """The factory's log, plus one request carrying a personal value, and feedback."""
    path = logged_project(tmp_path / "p.lepton")
    with Project.open(path) as project:
        serving_store.add_requests(project.conn, [{
            "deployment_id": NEW, "ts": time.time() - 1.5, "request_id": "private-1",
            "method": "POST", "path": "/predict", "protocol": "predict",
            "model": "diabetes-mlp", "version": 1, "status": 200, "latency_ms": 2.0,
            "n_rows": 1, "inputs": [{"age": 33, "email": SECRET}],
            "outputs": [{"value": 99.5}],
        }])  # fmt: skip
        serving_store.add_feedbacks(project.conn, NEW, [("private-1", 101.0, 0),
                                                        ("diab-a", 150.0, 0)])
    return path


def _file_bytes(path: Path) -> bytes:
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def _monitor_counts(project: Project) -> tuple[int, int]:
    report = project.monitor("all")
    return report["requests"], report["rows"]


def test_every_writing_connection_has_secure_delete_on(tmp_project: Path) -> None:
    conn = connect(tmp_project)
    try:
        assert conn.execute("PRAGMA secure_delete").fetchone()[0] == 1
    finally:
        conn.close()


def test_forgetting_a_request_removes_its_bytes_and_keeps_the_counts(logged: Path) -> None:
    with Project.open(logged) as project:
        before = _monitor_counts(project)
        project.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert SECRET.encode() in _file_bytes(logged)  # the test would prove nothing otherwise
    with Project.open(logged) as project:
        result = project.forget_requests(request_id="private-1")
        record = serving_store.find_request(project.conn, "private-1")
        assert record is not None and record.inputs is None and record.outputs is None
        assert serving_store.feedback_for(project.conn, "private-1") == []
        assert serving_store.feedback_for(project.conn, "diab-a") != []  # others kept
        assert _monitor_counts(project) == before  # the log row and its rollups stay
        assert serving_store.search_requests(project.conn, "jane") == []
    assert result == {"requests": 1, "inputs_cleared": 1, "feedback_deleted": 1}
    data = _file_bytes(logged)
    assert SECRET.encode() not in data and b"jane.secret" not in data


def test_forgetting_a_time_range_of_one_model(logged: Path) -> None:
    now = time.time()
    with Project.open(logged) as project:
        result = project.forget_requests(since=now - 600, until=now, model="diabetes-mlp")
        kept = serving_store.find_request(project.conn, "iris-a")
        gone = serving_store.find_request(project.conn, "diab-b")
    assert result["requests"] == 4 and result["inputs_cleared"] == 4
    assert result["feedback_deleted"] == 2
    assert kept is not None and kept.inputs == [{"sepal_length": 5.1}]
    assert gone is not None and gone.inputs is None


class _Heard:
    """A reporter that keeps what it hears."""

    def __init__(self) -> None:
        self.updates: list[tuple[int, int | None]] = []

    def update(self, done: int, total: int | None, message: str = "") -> None:
        self.updates.append((done, total))


def test_forgetting_reports_each_transaction(logged: Path) -> None:
    now = time.time()
    rows = [{"deployment_id": NEW, "ts": now - 100 + i * 0.01, "request_id": f"bulk-{i}",
             "method": "POST", "path": "/predict", "protocol": "predict", "model": "bulk",
             "version": 1, "status": 200, "latency_ms": 1.0, "n_rows": 1,
             "inputs": [{"x": i}]} for i in range(1200)]  # fmt: skip
    with Project.open(logged) as project:
        serving_store.add_requests(project.conn, rows)
        heard = _Heard()
        result = project.forget_requests(since=now - 200, until=now, model="bulk",
                                         reporter=heard)  # fmt: skip
    assert result["requests"] == result["inputs_cleared"] == 1200
    # Before the first transaction, then after each of the three (500, 500, 200 requests).
    assert heard.updates == [(0, 1200), (500, 1200), (1000, 1200), (1200, 1200)]


def test_personal_data_of_models_follows_the_training_data(tmp_path: Path) -> None:
    rows = [[f"user{i}@mail.example", i % 10, "ab"[i % 2]] for i in range(60)]
    people = write_csv(tmp_path / "people.csv", ["email", "x", "y"], rows)
    plain = write_csv(tmp_path / "plain.csv", ["x", "z", "y"],
                      [[i % 10, i % 3, "ab"[i % 2]] for i in range(60)])  # fmt: skip
    with Project.create(tmp_path / "p.lepton") as project:
        project.import_dataset(people, "people", target="y")
        project.import_dataset(plain, "plain", target="y")
        project.train("people", arch="mlp", epochs=1, model_name="people")
        project.train("plain", arch="mlp", epochs=1, model_name="plain")
        assert project.personal_data_of_models() == {"people": {"email": "email"}, "plain": {}}


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"request_id": "no-such-request"}, NotFoundError, "no logged request with id"),
        ({"request_id": "iris-a", "model": "diabetes-mlp"}, NotFoundError,
         "of model 'diabetes-mlp'"),
        ({}, InvalidOptionError, "say what to forget"),
        ({"request_id": "iris-a", "since": 1.0}, InvalidOptionError, "not both"),
        ({"since": 10.0, "until": 5.0}, InvalidOptionError, "--since must be before --until"),
    ],
)  # fmt: skip
def test_bad_forget_changes_nothing(
    logged: Path, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    before = snapshot(logged)
    with Project.open(logged) as project:
        inputs = [r.inputs for r in serving_store.latest_requests(project.conn, limit=50)]
        with pytest.raises(error, match=message):
            project.forget_requests(**kwargs)  # type: ignore[arg-type]
        after = [r.inputs for r in serving_store.latest_requests(project.conn, limit=50)]
    assert after == inputs
    assert snapshot(logged) == before


def test_a_copy_for_sharing_leaves_private_data_out(logged: Path, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "people.csv", ["email", "score", "y"],
                       [[f"person{i}@private.example", 1000 + i * 7.125, i % 2]
                        for i in range(40)])  # fmt: skip
    with Project.open(logged) as project:
        project.import_dataset(source, "people", target="y")
        requests_before = _monitor_counts(project)
        plain = project.share(tmp_path / "plain.lepton")
        bare = project.share(tmp_path / "bare.lepton", without_data=True)
    assert plain["left_out"]["request_inputs"] == 8 and plain["left_out"]["feedback"] == 2
    assert "dataset_rows" not in plain["left_out"] and bare["left_out"]["dataset_rows"] == 40
    plain_bytes = (tmp_path / "plain.lepton").read_bytes()
    bare_bytes = (tmp_path / "bare.lepton").read_bytes()
    for copy in (plain_bytes, bare_bytes):
        assert SECRET.encode() not in copy and b"sepal_length" not in copy
    assert b"person3@private.example" in plain_bytes  # kept: the rows were asked for
    for i in range(40):
        assert f"person{i}@private".encode() not in bare_bytes
    assert not list(tmp_path.glob("*.partial*"))
    with Project.open(tmp_path / "bare.lepton") as copy:
        assert _monitor_counts(copy) == requests_before  # history without the values
        assert [v.ref for v in copy.datasets()] == ["people:1"]
        assert copy.integrity_ok()
    assert SECRET.encode() in _file_bytes(logged)  # the project itself is only read


def test_share_never_replaces_a_file(logged: Path, tmp_path: Path) -> None:
    existing = tmp_path / "taken.lepton"
    existing.write_bytes(b"mine")
    before = snapshot(logged)
    with Project.open(logged) as project:
        with pytest.raises(LeptonError, match="already exists"):
            project.share(existing)
        with pytest.raises(LeptonError, match="already exists"):
            project.share(logged)
        with pytest.raises(LeptonError, match="no such folder"):
            project.share(tmp_path / "missing" / "copy.lepton")
    assert existing.read_bytes() == b"mine"
    assert snapshot(logged) == before
    assert not list(tmp_path.glob("*.partial*"))
