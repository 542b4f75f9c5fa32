"""Canary and shadow candidates on a real server answering real clients: the canary's
share of traffic holds statistically, and shadow answers are logged but never returned."""

from __future__ import annotations

import json
import math
from pathlib import Path

import httpx
import pytest

from lepton_desktop.core.errors import InvalidOptionError, NotFoundError
from lepton_desktop.core.project import Project
from tests.cli.test_cli import assert_user_error, cli
from tests.helpers import snapshot
from tests.serving_factory import copy_project, rows, running, serving_project  # noqa: F401

pytestmark = pytest.mark.slow


@pytest.fixture
def champion_one(serving_project: Path, tmp_path: Path) -> Path:  # noqa: F811
    """The trained project with ``champion`` on iris:1 (iris:2 is the candidate)."""
    project = copy_project(serving_project, tmp_path)
    with Project.open(project) as opened:
        opened.models.set_alias("iris:1", "champion")
    return project


def test_a_canary_answers_its_share_of_unpinned_requests(champion_one: Path) -> None:
    share, sent = 0.3, 400
    iris = rows()
    canary = [{"model": "iris", "version": 2, "share": share}]
    with running(champion_one, canary=canary) as runner, \
            httpx.Client(base_url=runner.url, timeout=10) as client:  # fmt: skip
        answered_by = [
            client.post("/predict", json={"model": "iris", "records": [iris[i % 150]]}
                        ).json()["model"]
            for i in range(sent)
        ]  # fmt: skip
        pinned = {client.post("/predict", json={"model": "iris:1", "records": [iris[0]]}
                              ).json()["model"] for _ in range(50)}  # fmt: skip
        v2 = client.post("/v2/models/iris/infer", json={"inputs": [
            {"name": c, "shape": [1], "datatype": "FP32", "data": [float(iris[0][c])]}
            for c in iris[0]]}).json()  # fmt: skip
    to_canary = answered_by.count("iris:2")
    assert set(answered_by) == {"iris:1", "iris:2"}
    # a binomial count: within 4 standard deviations of sent x share
    assert abs(to_canary - sent * share) < 4 * math.sqrt(sent * share * (1 - share))
    assert pinned == {"iris:1"}  # a request that names its version keeps it
    assert v2["model_version"] in ("1", "2")
    with Project.open(champion_one) as project:
        report = project.monitor("all", model="iris")
    assert report["versions"]["iris:2"] == to_canary + (v2["model_version"] == "2")


def test_shadow_answers_are_logged_and_never_returned(champion_one: Path) -> None:
    iris = rows()
    shadow = [{"model": "iris", "version": 2}]
    with running(champion_one, shadow=shadow) as runner, \
            httpx.Client(base_url=runner.url, timeout=10) as client:  # fmt: skip
        answers = [client.post("/predict", json={"model": "iris", "records": iris[i:i + 2]})
                   for i in range(0, 60, 2)]  # fmt: skip
        for answer in answers[::3]:  # the true label of each labelled request's first row
            client.post("/feedback", json={"request_id": answer.headers["x-request-id"],
                                           "label": "virginica"})  # fmt: skip
    assert all(a.status_code == 200 for a in answers)
    assert {a.json()["model"] for a in answers} == {"iris:1"}
    assert all("shadow" not in a.text for a in answers)
    with Project.open(champion_one) as project:
        log = project.conn.execute(
            "SELECT request_id, protocol, model, version, status, inputs, outputs "
            "FROM request_log ORDER BY id").fetchall()  # fmt: skip
        shadows = {r[0]: r for r in log if r[1] == "shadow"}
        served = [r for r in log if r[1] == "predict"]
        assert len(served) == 30 and len(shadows) == 30
        for row, answer in zip(served, answers, strict=True):
            shadow_row = shadows[f"{answer.headers['x-request-id']}-shadow-2"]
            assert shadow_row[2:5] == ("iris", 2, 200) and shadow_row[5] is None
            expected = project.predict("iris:2", json.loads(row[5]))
            assert [a["label"] for a in json.loads(shadow_row[6])] == [
                a["label"] for a in expected]  # fmt: skip
        report = project.monitor("all", model="iris")
        expected_agreement = _agreement(project, served, shadows, answers)
    assert report["requests"] == 30 and report["versions"] == {"iris:1": 30}  # not traffic
    compared = json.loads(cli("monitor", "compare", champion_one, "iris", "--candidate", "2",
                              "--json").stdout)  # fmt: skip
    assert compared["source"] == "shadow" and compared["requests"] == 30
    assert compared["rows"] == 60 and compared["agreement"] == pytest.approx(expected_agreement)
    assert compared["labelled"] == 10 and compared["quality"]["metric"] == "accuracy"
    assert set(compared["latency_ms"]["candidate"]) == {"p50", "p99"}
    assert compared["live"]["1"]["requests"] == 30 and compared["live"]["2"] is None
    text = cli("monitor", "compare", champion_one, "iris", "--candidate", "2", "--promote").stdout
    assert "promoted iris:2 to champion (was iris:1)" in text
    with Project.open(champion_one) as project:
        assert project.models.get("iris@champion").version == 2


def _agreement(project: Project, served: list, shadows: dict, answers: list) -> float:
    same = total = 0
    for row, answer in zip(served, answers, strict=True):
        shadow_row = shadows[f"{answer.headers['x-request-id']}-shadow-2"]
        for a, b in zip(json.loads(row[6]), json.loads(shadow_row[6]), strict=True):
            same += a["label"] == b["label"]
            total += 1
    return same / total


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["iris", "--candidate", "1"], "iris:1 is the champion: pick another version"),
        (["iris", "--candidate", "7"], "iris:7"),
        (["nope", "--candidate", "1"], "nope"),
        (["iris", "--candidate", "2", "--limit", "0"], "--limit 0"),
    ],
)
def test_bad_comparisons_are_refused_and_change_nothing(
    champion_one: Path, args: list[str], message: str
) -> None:
    before = snapshot(champion_one)
    assert_user_error(cli("monitor", "compare", champion_one, *args, check=False), message)
    assert snapshot(champion_one) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--canary", "iris:2=1.5"], "between 0 and 1 (exclusive)"),
        (["--canary", "iris:2=0"], "between 0 and 1 (exclusive)"),
        (["--canary", "iris:2"], "between 0 and 1 (exclusive)"),
        (["--canary", "iris=0.1"], "give MODEL:VERSION=SHARE"),
        (["--canary", "iris:9=0.1"], "iris:9"),
        (["--shadow", "iris:x"], "give MODEL:VERSION"),
        (["--shadow", "nope:1"], "nope"),
        (["--model", "iris:1", "--shadow", "iris:2"], "serve its model (--model iris)"),
    ],
)
def test_bad_candidates_are_refused_before_anything_is_recorded(
    champion_one: Path, args: list[str], message: str
) -> None:
    before = snapshot(champion_one)
    assert_user_error(cli("serve", champion_one, "--port", "0", *args, check=False), message)
    assert snapshot(champion_one) == before


def test_a_stopped_deployment_is_queued_again_with_other_candidates(champion_one: Path) -> None:
    """What the Model update page's live routing does after stopping the server: a new
    deployment like the old one, this model's candidates replaced, other models' kept."""
    with Project.open(champion_one) as project:
        old = project.serving.create(
            ["iris", "diabetes"], port=8799, token="a-token-of-24-characters", max_batch=8,
            shadow=[{"model": "diabetes", "version": 1}],
            canary=[{"model": "iris", "version": 2, "share": 0.2}],
        )  # fmt: skip
        project.serving.update(old.id, status="running")
    before = snapshot(champion_one)
    with Project.open(champion_one) as project:
        with pytest.raises(InvalidOptionError, match="is running: stop its server"):
            project.serving.requeue_with_candidates(old.id, "iris", shadow=1)
        # What the page checks before it stops the server, and what the requeue refuses.
        for options, error, message in (
            ({"canary": (2, 1.5)}, InvalidOptionError, "share must be a number between 0 and 1"),
            ({"shadow": 9}, NotFoundError, "iris:9"),
        ):  # fmt: skip
            with pytest.raises(error, match=message):
                project.serving.candidate_options(old.id, "iris", **options)
    assert snapshot(champion_one) == before
    with Project.open(champion_one) as project:
        project.serving.update(old.id, status="stopped")
        stopped = snapshot(champion_one)
        with pytest.raises(NotFoundError, match="iris:9"):
            project.serving.requeue_with_candidates(old.id, "iris", shadow=9)
        assert snapshot(champion_one) == stopped
        new, job_id = project.serving.requeue_with_candidates(old.id, "iris", shadow=1)
        assert (new.host, new.port, new.token, new.models) == (old.host, 8799, old.token,
                                                               ["iris", "diabetes"])  # fmt: skip
        assert new.options["max_batch"] == 8 and new.status == "queued" and job_id
        assert new.options["canary"] == []
        assert new.options["shadow"] == [{"model": "diabetes", "version": 1},
                                         {"model": "iris", "version": 1}]  # fmt: skip
