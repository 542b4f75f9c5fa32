"""``POST /explain`` on a real server: predictions and their attributions, and 400s."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import httpx
import pytest

from tests.conftest import SAMPLE_DATA
from tests.explain_factory import explain_project  # noqa: F401 (a fixture)
from tests.serving_factory import running

pytestmark = pytest.mark.slow


@pytest.fixture
def project(explain_project: Path, tmp_path: Path) -> Path:  # noqa: F811
    path = tmp_path / "p.lepton"
    shutil.copy(explain_project, path)
    return path


def test_explain_answers_like_predict_with_attributions(project: Path) -> None:
    from lepton_desktop.core.project import Project

    records = [{"price": 7.5, "colour": "red"}, {"price": 2.0, "colour": "blue"}]
    picture = base64.b64encode((SAMPLE_DATA / "digits" / "3" / "0013.png").read_bytes())
    with running(project) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        predicted = client.post("/predict", json={"model": "shop", "records": records}).json()
        answer = client.post("/explain", json={"model": "shop", "records": records})
        assert answer.status_code == 200, answer.text
        explained = answer.json()
        digit = {"model": "digits", "method": "gradcam", "records": [{"image": picture.decode()}]}
        image = client.post("/explain", json=digit)
        document = client.get("/openapi.json").json()
    assert explained["predictions"] == predicted["predictions"]
    first = explained["explanations"][0]
    assert first["baseline"] == "the training mean of every column"  # read from the project
    assert {f["column"] for f in first["features"]} == {"price", "colour"}
    assert first["total"] == pytest.approx(first["output"] - first["baseline_output"], rel=0.01)
    assert image.status_code == 200 and len(image.json()["explanations"][0]["heatmap"]) == 8
    assert "/explain" in document["paths"]
    # The logged /explain request keeps its inputs: the project explains it again.
    with Project.open(project) as opened:
        again = opened.explain("shop", request_id=explained["request_id"])
    assert again.features == [
        {**f, "attribution": pytest.approx(f["attribution"], abs=1e-6)} for f in first["features"]
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "shop", "records": [{"price": 1.0}]}, "missing feature 'colour'"),
        ({"model": "shop", "records": [{"price": 1.0, "colour": "red"}], "method": "lime"},
         "unknown explanation method 'lime'"),
        ({"model": "shop", "records": [{"price": 1.0, "colour": "red"}], "method": "gradcam"},
         "gradcam explains convolutional"),
        ({"model": "shop", "records": [{"price": 1.0, "colour": "red"}] * 17},
         "explains at most 16"),
    ],
)  # fmt: skip
def test_bad_explain_requests_get_a_400_naming_the_problem(
    project: Path, body: dict, message: str
) -> None:
    with running(project, log=False) as server:
        answer = httpx.post(f"{server.url}/explain", json=body, timeout=60)
    assert answer.status_code == 400 and message in answer.json()["error"]
