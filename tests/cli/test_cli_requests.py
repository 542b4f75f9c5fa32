"""``lepton-desktop requests PROJECT [--search TEXT] [--deployment N] [--limit N] [--json]``
in real subprocesses, on a project with a real request log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lepton_desktop.core.project import Project
from lepton_desktop.core.store import serving as serving_store
from tests.cli.test_cli import assert_user_error, cli
from tests.request_log_factory import MISSING, NEW, OLD, logged_project


@pytest.fixture
def logged(tmp_path: Path) -> Path:
    return logged_project(tmp_path / "p.lepton")


def test_lists_the_newest_requests_like_a_log(logged: Path) -> None:
    proc = cli("requests", logged, "--limit", "2")
    lines = proc.stdout.splitlines()
    assert len(lines) == 2
    assert "diab-slow" in lines[0] and "504" in lines[0] and "timeout" in lines[0]
    assert "diab-b" in lines[1] and "diabetes-mlp:1" in lines[1] and "/predict" in lines[1]
    assert "the newest 2" in proc.stderr  # more were logged
    everything = cli("requests", logged)
    lines = everything.stdout.splitlines()
    assert len(lines) == 7 and "iris-a" in lines[0]
    assert everything.stderr == ""  # all of them: nothing more to show
    assert "the newest" not in cli("requests", logged, "--limit", "7").stderr


def test_search_and_deployment_as_json(logged: Path) -> None:
    out = cli("requests", logged, "--search", "petal_width OR setosa", "--json").stdout
    assert out.count("\n") == 1
    payload = json.loads(out)
    ids = [r["request_id"] for r in payload["requests"]]
    assert ids == ["iris-a", "iris-b", "iris-bad", "iris-c"]
    assert payload["count"] == 4 and payload["search"] == "petal_width OR setosa"
    assert payload["more"] is False
    bad = payload["requests"][2]
    assert bad["status"] == 400 and bad["error"] == MISSING
    assert bad["inputs"] == [{"sepal_length": 5.0}] and bad["deployment_id"] == OLD
    one = json.loads(cli("requests", logged, "--deployment", NEW, "--json").stdout)
    assert [r["request_id"] for r in one["requests"]] == ["diab-a", "diab-slow", "diab-b"]
    none = cli("requests", logged, "--search", "nothing_like_this")
    assert none.stdout.strip() == "no requests match"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--search", '"unclosed'], "is not a full-text query SQLite can read (unterminated"),
        (["--search", "AND OR"], "put words with punctuation in double quotes"),
        (["--search", "colour: red"], "no such column: colour"),
        (["--limit", "0"], "--limit 0: give a number from 1 to 100,000"),
        (["--limit", "many"], "invalid int value: 'many'"),
        (["--deployment", "9"], "no deployment 9"),
    ],
)
def test_bad_input_is_one_error_line_and_the_file_is_unchanged(
    logged: Path, args: list[str], message: str
) -> None:
    before = logged.read_bytes()
    assert_user_error(cli("requests", logged, *args, check=False), message)
    assert logged.read_bytes() == before


def test_what_clients_sent_cannot_drive_the_terminal(logged: Path) -> None:
    with Project.open(logged) as project:
        serving_store.add_requests(project.conn, [{
            "deployment_id": NEW, "ts": 1e9, "request_id": "evil", "method": "GET",
            "path": "/\x1b[2J\u202eredirect\nx", "status": 404, "latency_ms": 0.1,
            "error": "no route \x07",
        }])  # fmt: skip
    out = cli("requests", logged, "--search", "evil").stdout
    assert out.count("\n") == 1 and "\x1b" not in out and "\u202e" not in out
    assert "/\\x1b[2J\\u202eredirect\\x0ax" in out and "no route \\x07" in out
