"""Alert rules on logged traffic: fire, resolve, cool down, roll back, deliver webhooks.

Webhooks go to a real HTTP server on 127.0.0.1 (a thread of this process) that records
what it received, answers 500 when told to, or is not there at all.
"""

from __future__ import annotations

import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lepton_desktop.core.errors import InvalidOptionError, NotFoundError
from lepton_desktop.core.monitoring.alerts import RuleSpec
from lepton_desktop.core.project import Project
from tests.helpers import snapshot
from tests.monitoring_factory import log_traffic
from tests.serving_factory import serving_project  # noqa: F401

NOW = 1_800_000_000.0


@pytest.fixture(autouse=True)
def _private_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # the sealing key goes here


class Receiver(http.server.ThreadingHTTPServer):
    """Records the JSON bodies POSTed to it; answers 500 to the first ``failures`` posts."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies: list[dict[str, Any]] = []
        self.failures = failures

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        server: Receiver = self.server  # type: ignore[assignment]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        status = 500 if server.failures > 0 else 200
        server.failures -= 1
        server.bodies.append(body)
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def project(tmp_path: Path, serving_project: Path) -> Path:  # noqa: F811
    """The trained iris (versions 1, 2) with 10 minutes of traffic: 10% errors, 80% right."""
    path = tmp_path / "alerts.lepton"
    shutil.copy(serving_project, path)
    log_traffic(path, 2000, model="iris", version=2, start=NOW - 600, seconds=590,
                error_share=0.1, feedback_share=0.5, seed=5)  # fmt: skip
    return path


def test_a_rule_fires_once_resolves_and_cools_down(project: Path, receiver: Receiver) -> None:
    with Project.open(project) as opened:
        opened.add_alert(RuleSpec("errors", "error_rate", ">", 0.05, model="iris",
                                  window="15m", min_rows=100, cooldown_s=3600,
                                  webhook=receiver.url))  # fmt: skip
        (fired,) = opened.check_alerts(now=NOW)
        assert fired.state == "firing"
        assert "error_rate of iris over 15m is 0.1" in fired.message
        assert opened.check_alerts(now=NOW + 60) == []  # still firing: no second alert
        assert opened.check_alerts(now=NOW + 3600) == []  # no traffic: no verdict, still open
    later = NOW + 2 * 3600
    log_traffic(project, 500, model="iris", version=2, start=later - 600, seconds=590,
                error_share=0.0, seed=6)  # fmt: skip
    log_traffic(project, 500, model="iris", version=2, start=later + 1200, seconds=590,
                error_share=0.3, seed=7)  # fmt: skip
    log_traffic(project, 500, model="iris", version=2, start=later + 7200, seconds=590,
                error_share=0.3, seed=8)  # fmt: skip
    with Project.open(project) as opened:
        (resolved,) = opened.check_alerts(now=later)  # ten good minutes
        assert resolved.state == "resolved" and resolved.event_id == fired.event_id
        assert opened.check_alerts(now=later + 1800) == []  # bad again, but cooling down
        (again,) = opened.check_alerts(now=later + 7800)  # bad after the cooldown: fires
        assert again.state == "firing" and again.event_id != fired.event_id
        first = opened.alert_history()[-1]
    assert first.state == "resolved" and first.rows >= 100
    assert [b["state"] for b in receiver.bodies] == ["firing", "resolved", "firing"]
    assert receiver.bodies[0]["alert"] == "errors" and receiver.bodies[0]["threshold"] == 0.05
    assert [d["status"] for d in first.deliveries] == [200, 200]


def test_too_few_rows_give_no_verdict(project: Path) -> None:
    with Project.open(project) as opened:
        opened.add_alert(RuleSpec("strict", "error_rate", ">", 0.05, model="iris",
                                  window="15m", min_rows=100_000))  # fmt: skip
        assert opened.check_alerts(now=NOW) == []


def test_webhook_retries_and_records_a_dead_receiver(project: Path, receiver: Receiver) -> None:
    receiver.failures = 2
    dead = Receiver()
    dead_url = dead.url
    dead.server_close()  # nothing listens there any more
    with Project.open(project) as opened:
        opened.add_alert(RuleSpec("flaky", "error_rate", ">", 0.05, model="iris",
                                  webhook=receiver.url))  # fmt: skip
        opened.add_alert(RuleSpec("gone", "error_rate", ">", 0.05, model="iris",
                                  webhook=dead_url))  # fmt: skip
        changes = opened.check_alerts(now=NOW)
        history = {a.rule: a for a in opened.alert_history()}
    assert {c.rule for c in changes} == {"flaky", "gone"}
    assert [d["status"] for d in history["flaky"].deliveries] == [500, 500, 200]
    gone = history["gone"].deliveries
    assert len(gone) == 3 and all(d["status"] is None and d["error"] for d in gone)
    assert history["gone"].state == "firing"  # the alert stands; only its delivery failed


def test_rollback_moves_the_champion_back(project: Path) -> None:
    with Project.open(project) as opened:
        opened.models.set_alias("iris:2", "champion")
        opened.add_alert(RuleSpec("quality", "accuracy", "<", 0.9, model="iris",
                                  min_rows=100, action="rollback"))  # fmt: skip
        (fired,) = opened.check_alerts(now=NOW)
        champion = opened.models.get("iris@champion")
    assert fired.action_taken == "champion of iris moved from version 2 to 1"
    assert champion.version == 1


def test_the_webhook_is_sealed_in_the_file(project: Path, receiver: Receiver,
                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           ) -> None:  # fmt: skip
    secret_url = receiver.url + "?token=s3cr3t-s3cr3t"
    with Project.open(project) as opened:
        opened.add_alert(RuleSpec("sealed", "error_rate", ">", 0.05, model="iris",
                                  webhook=secret_url))  # fmt: skip
    assert b"s3cr3t" not in project.read_bytes() + _wal(project)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "another-machine"))
    with Project.open(project) as opened:
        opened.check_alerts(now=NOW)
        (alert,) = opened.alert_history()
    assert "saved on another machine" in alert.deliveries[0]["error"]
    assert receiver.bodies == []


def _wal(path: Path) -> bytes:
    wal = path.with_name(path.name + "-wal")
    return wal.read_bytes() if wal.exists() else b""


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        (RuleSpec("x", "happiness", ">", 1.0), "--metric 'happiness'"),
        (RuleSpec("x", "error_rate", "=", 0.1), "comparison '='"),
        (RuleSpec("x", "error_rate", ">", float("nan")), "threshold nan"),
        (RuleSpec("x", "accuracy", "<", 90.0, model="iris"), "share from 0 to 1"),
        (RuleSpec("x", "accuracy", "<", 0.9), "name the model"),
        (RuleSpec("x", "error_rate", ">", 0.1, action="rollback"), "name the model"),
        (RuleSpec("x", "error_rate", ">", 0.1, window="fortnight"), "--since 'fortnight'"),
        (RuleSpec("x", "error_rate", ">", 0.1, min_rows=-1), "--min-rows -1"),
        (RuleSpec("x", "error_rate", ">", 0.1, webhook="file:///etc/passwd"), "--webhook"),
        (RuleSpec("bad\nname", "error_rate", ">", 0.1), "--name"),
    ],
)
def test_impossible_rules_are_refused_and_nothing_is_stored(
    project: Path, spec: RuleSpec, error: str
) -> None:
    before = snapshot(project)
    with Project.open(project) as opened, pytest.raises(InvalidOptionError, match=error):
        opened.add_alert(spec)
    assert snapshot(project) == before


def test_unknown_model_and_duplicate_names_are_refused(project: Path) -> None:
    with Project.open(project) as opened:
        with pytest.raises(NotFoundError):
            opened.add_alert(RuleSpec("x", "error_rate", ">", 0.1, model="nope"))
        opened.add_alert(RuleSpec("x", "error_rate", ">", 0.1))
        with pytest.raises(InvalidOptionError, match="named 'x' exists"):
            opened.add_alert(RuleSpec("x", "error_rate", ">", 0.2))
        assert [r.threshold for r in opened.alert_rules()] == [0.1]
        opened.remove_alert("x")
        with pytest.raises(NotFoundError, match="no alert rule named 'x'"):
            opened.remove_alert("x")
