"""A real ``serve`` process checks alert rules and publishes gauges; a real Prometheus
scrapes them.

The server logs real requests (a share of them bad), its monitoring thread fires the
error-rate rule and POSTs it to a webhook receiver on 127.0.0.1, ``/metrics`` carries
``lepton_alert_firing`` and the live quality, and Debian's ``prometheus`` (started here
on 127.0.0.1, stopped after) answers a PromQL query for them.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from lepton_desktop.core.monitoring.alerts import RuleSpec
from lepton_desktop.core.project import Project
from tests.cli.test_serve_cli import _serve
from tests.core.monitoring.test_alerts import Receiver
from tests.serving_factory import copy_project, rows, serving_project  # noqa: F401

pytestmark = pytest.mark.slow
PROMETHEUS = shutil.which("prometheus")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def receiver():
    server = Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_running_server_fires_alerts_and_prometheus_sees_them(
    serving_project: Path, tmp_path: Path, cli_env: dict[str, str], receiver: Receiver,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    if PROMETHEUS is None:
        pytest.skip("Debian's prometheus package is not installed (.ci/run installs it)")
    project = copy_project(serving_project, tmp_path)
    env = {**cli_env, "LEPTON_MONITOR_CHECK_S": "0.5", "XDG_DATA_HOME": str(tmp_path / "xdg")}
    monkeypatch.setenv("XDG_DATA_HOME", env["XDG_DATA_HOME"])
    with Project.open(project) as opened:
        opened.add_alert(RuleSpec("errors", "error_rate", ">", 0.1, window="15m", min_rows=10,
                                  webhook=receiver.url))  # fmt: skip
    server, url = _serve([str(project), "--port", "0"], env)
    prometheus = None
    try:
        iris = rows()
        with httpx.Client(base_url=url, timeout=10) as client:
            for i in range(40):
                good = i % 3
                records = [iris[i]] if good else [{"sepal_length": "x"}]
                answer = client.post("/predict", json={"model": "iris", "records": records})
                assert answer.status_code == (200 if good else 400)
                if good:
                    client.post("/feedback", json={"request_id": answer.headers["x-request-id"],
                                                   "label": "setosa"})  # fmt: skip
            _until(lambda: receiver.bodies, 30, "the webhook")
            assert receiver.bodies[0]["state"] == "firing"
            assert receiver.bodies[0]["alert"] == "errors"
            # One round sets the alert gauges, then live quality and its estimate, then
            # drift (the first round profiles the training split first): wait for all.
            wanted = ['lepton_alert_firing{alert="errors"} 1.0',
                      'lepton_live_quality{metric="accuracy",model="iris"}',
                      'lepton_drift_share{model="iris"}',
                      'lepton_estimated_quality{metric="accuracy",model="iris"}']  # fmt: skip
            _until(lambda: _metrics_with(client, *wanted), 60, "the gauges on /metrics")
        prometheus, port = _start_prometheus(tmp_path, url)
        query = f"http://127.0.0.1:{port}/api/v1/query"
        result = _until(lambda: _promql(query, "lepton_alert_firing"), 60, "Prometheus")
        assert result[0]["metric"]["alert"] == "errors" and result[0]["value"][1] == "1"
        labelled = _promql(query, 'lepton_labelled_rows{model="iris"}')
        assert labelled and float(labelled[0]["value"][1]) > 0
        # The drift of the served inputs: one series per feature, each with its test.
        features = _promql(query, 'lepton_feature_drift{model="iris"}')
        assert features and {r["metric"]["feature"] for r in features} == {
            "sepal_length",
            "sepal_width",
            "petal_length",
            "petal_width",
            "prediction",
        }
        assert all(r["metric"]["test"] in ("ks", "chisquare", "z", "wasserstein",
                                           "jensenshannon") for r in features)  # fmt: skip
        share = _promql(query, 'lepton_drift_share{model="iris"}')
        drifted = _promql(query, 'sum(lepton_feature_drifted{model="iris",feature!="prediction"})')
        assert share and drifted
        assert float(share[0]["value"][1]) == pytest.approx(float(drifted[0]["value"][1]) / 4)
    finally:
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(20)
        server.terminate()
        assert server.wait(60) == 0
    with Project.open(project) as opened:
        (alert,) = opened.alert_history()
    assert alert.state == "firing" and alert.deliveries[0]["status"] == 200


def _promql(url: str, query: str) -> list[dict] | None:
    """The query's result, or None while Prometheus starts (refused, 503) or has none."""
    try:
        answer = httpx.get(url, params={"query": query}, timeout=5)
        return answer.json()["data"]["result"] if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def _metrics_with(client: httpx.Client, *lines: str) -> str | None:
    text = client.get("/metrics").text
    return text if all(line in text for line in lines) else None


def _start_prometheus(tmp_path: Path, url: str) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    target = url.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: lepton\n    static_configs: [{{targets: ['{target}']}}]\n"
    )
    process = subprocess.Popen(
        [str(PROMETHEUS), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return process, port
