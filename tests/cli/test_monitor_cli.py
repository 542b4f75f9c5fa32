"""``lepton-desktop monitor``: a real server's traffic and feedback, read back by the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.cli.test_cli import assert_user_error, cli
from tests.helpers import snapshot
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
    ],
)
def test_monitor_refuses_bad_options_and_changes_nothing(
    served: Path, args: tuple[str, ...], message: str
) -> None:
    before = snapshot(served)
    assert_user_error(cli("monitor", served, *args, check=False), message)
    assert snapshot(served) == before
