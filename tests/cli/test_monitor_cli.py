"""``lepton-desktop monitor``: a real server's traffic and feedback, read back by the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.cli.test_cli import assert_user_error, cli
from tests.helpers import snapshot, write_csv
from tests.serving_factory import copy_project, rows, running, serving_project  # noqa: F401

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(serving_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    project = copy_project(serving_project, tmp_path_factory.mktemp("monitor-cli"))
    iris = rows()
    with running(project) as runner, httpx.Client(base_url=runner.url, timeout=10) as client:
        for i in range(25):
            answer = client.post("/predict", json={"model": "iris", "records": [iris[i]]})
            label = answer.json()["predictions"][0]["label"]
            client.post("/feedback", json={"request_id": answer.headers["x-request-id"],
                                           "label": label if i % 5 else "setosa-not"})  # fmt: skip
        client.post("/predict", json={"model": "iris", "records": [{}]})  # a 400
    return project


def test_monitor_json(served: Path) -> None:
    report = json.loads(cli("monitor", served, "--since", "all", "--json").stdout)
    assert report["requests"] == 26
    assert report["errors"] == {"4xx": 1, "5xx": 0}
    assert report["rows"] == 25
    assert set(report["latency_ms"]) == {"p50", "p95", "p99", "mean"}
    (entry,) = report["models"]
    assert entry["model"] == "iris"
    assert report["quality"]["labelled"] == 25
    assert report["quality"]["metrics"]["accuracy"] == pytest.approx(20 / 25)
    # The offline test metrics of the version that answered, as stored at registration.
    reference = report["quality"]["reference"]
    from lepton_desktop.core.project import Project
    from lepton_desktop.core.store import models as model_store

    with Project.open(served) as project:
        stored = model_store.resolve(project.conn, f"iris:{reference['version']}").metrics
    assert reference["metrics"]["accuracy"] == pytest.approx(stored["accuracy"])
    last = json.loads(cli("monitor", served, "--since", "all", "--last-labelled", "10",
                          "--json").stdout)["quality_last_labelled"]  # fmt: skip
    assert last["labelled"] == 10 and last["last"] == 10


def test_monitor_text_names_the_model_and_its_quality(served: Path) -> None:
    out = cli("monitor", served, "--since", "7d", "--model", "iris").stdout
    assert "iris  (7d): 26 requests" in out
    assert "25 labelled rows: accuracy 0.800" in out


def test_monitor_without_traffic(tmp_path: Path) -> None:
    cli("new", tmp_path / "empty.lepton")
    assert cli("monitor", tmp_path / "empty.lepton").stdout.strip() == "no requests logged (1h)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--since", "yesterday"), "--since 'yesterday'"),
        (("--model", "nope"), "model 'nope' has no logged requests (served: iris)"),
        (("--model", "iris:x"), "--model 'iris:x'"),
        (("--watch", "0"), "--watch 0.0"),
        (("--last-labelled", "0"), "--last-labelled 0: give a count of labelled rows"),
    ],
)
def test_monitor_refuses_bad_options_and_changes_nothing(
    served: Path, args: tuple[str, ...], message: str
) -> None:
    before = snapshot(served)
    assert_user_error(cli("monitor", served, *args, check=False), message)
    assert snapshot(served) == before


def test_alert_rules_from_the_command_line(served: Path, tmp_path: Path) -> None:
    env_home = {"XDG_DATA_HOME": str(tmp_path / "xdg")}
    project = tmp_path / "alerts.lepton"
    project.write_bytes(served.read_bytes())
    added = json.loads(cli("monitor", "alerts", "add", project, "--name", "slow",
                           "--metric", "latency_p99_ms", "--above", "0.000001", "--model",
                           "iris", "--window", "7d", "--webhook", "http://127.0.0.1:9/x",
                           "--json", env=env_home).stdout)  # fmt: skip
    (rule,) = added["rules"]
    assert (rule["name"], rule["op"], rule["webhook"]) == ("slow", ">", "(sealed)")
    assert "slow: latency_p99_ms of iris over 7d > 1e-06 · webhook" in cli(
        "monitor", "alerts", "list", project, env=env_home).stdout
    checked = cli("monitor", "alerts", "check", project, env=env_home).stdout
    assert checked.startswith("firing: slow: latency_p99_ms of iris over 7d is ")
    history = json.loads(cli("monitor", "alerts", "history", project, "--json",
                             env=env_home).stdout)  # fmt: skip
    (alert,) = history["alerts"]
    assert alert["state"] == "firing" and alert["deliveries"][0]["error"]  # port 9: refused
    assert "removed alert rule 'slow'" in cli("monitor", "alerts", "remove", project, "slow",
                                              env=env_home).stdout  # fmt: skip
    assert cli("monitor", "alerts", "list", project).stdout.strip() == "no alert rules"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--name", "x", "--metric", "joy", "--above", "1"), "--metric 'joy'"),
        (("--name", "x", "--metric", "accuracy", "--below", "0.9"), "name the model"),
        (("--name", "x", "--metric", "error_rate", "--above", "2"), "share from 0 to 1"),
        (("--name", "x", "--metric", "error_rate", "--above", "0.1", "--cooldown", "soon"),
         "--cooldown 'soon'"),
        (("--name", "x", "--metric", "error_rate"), "one of the arguments --above --below"),
    ],
)
def test_impossible_alert_rules_are_refused(
    served: Path, args: tuple[str, ...], message: str
) -> None:
    before = snapshot(served)
    assert_user_error(cli("monitor", "alerts", "add", served, *args, check=False), message)
    assert snapshot(served) == before


def _logged_ids(project: Path) -> list[str]:
    import sqlite3

    conn = sqlite3.connect(project)
    try:
        return [r[0] for r in conn.execute(
            "SELECT request_id FROM request_log WHERE status = 200 AND model = 'iris' "
            "ORDER BY id")]  # fmt: skip
    finally:
        conn.close()


def test_monitor_feedback_imports_labels_of_a_registered_model(
    served: Path, tmp_path: Path
) -> None:
    project = copy_project(served, tmp_path)
    ids = _logged_ids(project)
    labels = write_csv(tmp_path / "labels.csv", ["request_id", "label"],
                       [[rid, "virginica"] for rid in ids])  # fmt: skip
    stored = json.loads(cli("monitor", "feedback", project, labels, "--json").stdout)
    assert stored["labels"] == stored["requests"] == 25
    assert list(stored["by_model"].values()) == [25]  # one version answered them all
    report = json.loads(cli("monitor", project, "--since", "all", "--json").stdout)
    assert report["quality"]["labelled"] == 25  # the imported labels supersede the older ones
    truth_row = report["quality"]["labels"].index("virginica")
    assert sum(report["quality"]["confusion"][truth_row]) == 25


def test_monitor_feedback_refuses_a_label_outside_the_models_classes(
    served: Path, tmp_path: Path
) -> None:
    first = _logged_ids(served)[0]
    labels = write_csv(tmp_path / "labels.csv", ["request_id", "label", "row"],
                       [[first, "setosa", 0], [first, "rose", 1]])  # fmt: skip
    before = snapshot(served)
    assert_user_error(cli("monitor", "feedback", served, labels, check=False),
                      "line 3: request")  # fmt: skip
    labels = write_csv(tmp_path / "labels.csv", ["request_id", "label"], [[first, "rose"]])
    assert_user_error(cli("monitor", "feedback", served, labels, check=False),
                      "line 2: 'rose' is not a class of iris:")  # fmt: skip
    assert snapshot(served) == before
