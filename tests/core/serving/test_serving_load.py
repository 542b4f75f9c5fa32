"""Under concurrent load: dynamic batching, hot swaps of versions, and the request log."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from lepton_desktop.core.inference.predictor import Predictor
from lepton_desktop.core.project import Project
from tests.serving_factory import copy_project, rows, running, serving_project

__all__ = ["serving_project"]


@pytest.fixture
def project(serving_project: Path, tmp_path: Path) -> Path:
    return copy_project(serving_project, tmp_path)


def _hammer(
    url: str, threads: int, requests: int, body: Callable[[int], Any]
) -> list[tuple[int, httpx.Response]]:
    """``requests`` POST /predict from ``threads`` threads, one client each."""
    answers: list[tuple[int, httpx.Response]] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            for i in range(worker, requests, threads):
                answer = client.post("/predict", json=body(i))
                with lock:
                    answers.append((i, answer))

    pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return answers


def test_concurrent_requests_share_forward_passes(project: Path) -> None:
    """16 clients at once: passes are shared, and each answer equals the unbatched one."""
    records = rows()
    with Project.open(project) as opened:
        expected = Predictor.from_project(opened, "iris:1").predict(records)
    with running(project, log=False, max_batch=64, max_wait_ms=5) as runner:
        answers = _hammer(
            runner.url, 16, 300, lambda i: {"model": "iris:1", "records": [records[i % 150]]}
        )
        metrics = httpx.get(runner.url + "/metrics").text
    passes = _sample(metrics, 'lepton_batch_requests_count{model="iris",version="1"}')
    requests = _sample(metrics, 'lepton_batch_requests_sum{model="iris",version="1"}')
    assert requests == 300 and passes < 300  # some passes were shared
    for i, answer in answers:
        assert answer.status_code == 200
        (got,) = answer.json()["predictions"]
        want = expected[i % 150]
        assert got["label"] == want["label"]
        for label, p in got["probabilities"].items():
            assert abs(p - want["probabilities"][label]) < 1e-5


def test_promote_and_roll_back_under_load_drop_nothing(project: Path) -> None:
    records = rows()[50:100]  # where the two versions disagree most
    stop = threading.Event()
    with running(project) as runner:
        versions: Counter[str] = Counter()
        statuses: Counter[int] = Counter()
        lock = threading.Lock()

        def work() -> None:
            with httpx.Client(base_url=runner.url, timeout=30) as client:
                while not stop.is_set():
                    answer = client.post("/predict", json={"model": "iris", "records": records})
                    with lock:
                        statuses[answer.status_code] += 1
                        if answer.status_code == 200:
                            versions[answer.json()["model"]] += 1

        pool = [threading.Thread(target=work) for _ in range(8)]
        for thread in pool:
            thread.start()
        with Project.open(project) as opened:
            for round_ in range(6):  # promote v1, roll back to v2, ...
                opened.models.set_alias(f"iris:{1 + round_ % 2}", "champion")
                time.sleep(0.6)
        stop.set()
        for thread in pool:
            thread.join()
    assert set(statuses) == {200}, statuses
    assert versions["iris:1"] > 0 and versions["iris:2"] > 0, versions


def test_every_served_request_is_logged(project: Path) -> None:
    records = rows()
    with running(project, models=["iris"]) as runner:
        answers = _hammer(runner.url, 8, 2000, lambda i: {"records": [records[i % 150]]})
        served = runner.served
        deployment_id = runner.spec.deployment_id
    assert sum(a.status_code == 200 for _, a in answers) == 2000
    with Project.open(project) as opened:
        # Everything answered is logged, and nothing else was served (a server says
        # itself that it listens: no readiness probe).
        assert opened.serving.request_count(deployment_id) == served == 2000
        logged = opened.serving.requests_since(deployment_id, 0, limit=3000)
        assert opened.integrity_ok()
    predictions = [r for r in logged if r.path == "/predict"]
    assert len(predictions) == 2000 and {r.status for r in predictions} == {200}
    assert predictions[0].inputs is not None and predictions[0].outputs[0]["label"]


def test_capture_off_stores_no_inputs(project: Path) -> None:
    with running(project, models=["iris"], capture_inputs=False) as runner:
        answer = httpx.post(runner.url + "/predict", json=rows()[:2])
        deployment_id = runner.spec.deployment_id
    assert answer.status_code == 200
    with Project.open(project) as opened:
        (logged,) = [
            r for r in opened.serving.requests_since(deployment_id) if r.path == "/predict"
        ]
    assert logged.inputs is None and len(logged.outputs) == 2


def _sample(metrics: str, name: str) -> float:
    """The value of one sample of the Prometheus text exposition format."""
    line = next(x for x in metrics.splitlines() if x.startswith(name + " "))
    return float(line.rsplit(" ", 1)[1])
