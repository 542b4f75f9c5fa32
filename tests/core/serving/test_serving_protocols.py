"""The server's protocols, each spoken by its real client against a real uvicorn server.

KServe V2 through ``tritonclient.http`` (binary tensors, its default, and JSON),
MLflow's scoring payloads as pandas and MLflow's docs build them, and the native
``/predict`` and ``/feedback``; answers must equal the Predictor's own.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from lepton_desktop.core.inference.predictor import Predictor
from lepton_desktop.core.project import Project
from tests.serving_factory import copy_project, rows, running, serving_project

__all__ = ["serving_project"]


@pytest.fixture(scope="module")
def project(serving_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(serving_project, tmp_path_factory.mktemp("protocols"))


@pytest.fixture(scope="module")
def server(project: Path) -> Iterator[Any]:
    with running(project) as runner:
        yield runner


@pytest.fixture(scope="module")
def client(server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def iris(project: Path) -> Predictor:
    with Project.open(project) as opened:
        return Predictor.from_project(opened, "iris:2")


def _expected(predictor: Predictor, records: list[dict[str, Any]]) -> list[str]:
    return [a["label"] for a in predictor.predict(records)]


def test_tritonclient_binary_tensors_raw_columns(server: Any, iris: Predictor) -> None:
    import tritonclient.http as triton

    records = rows()[:20]
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("iris") and client.is_model_ready("iris", "1")
    metadata = client.get_model_metadata("iris")
    names = [i["name"] for i in metadata["inputs"]]
    assert names == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert {o["name"] for o in metadata["outputs"]} == {"label", "probabilities"}
    assert metadata["versions"] == ["1", "2"]
    inputs = []
    for name in names:
        tensor = triton.InferInput(name, [len(records), 1], "FP32")
        tensor.set_data_from_numpy(np.array([[float(r[name])] for r in records], np.float32))
        inputs.append(tensor)  # binary_data=True: Triton's binary extension
    result = client.infer("iris", inputs)  # outputs come back binary too
    labels = [v.decode() for v in result.as_numpy("label")]
    assert labels == _expected(iris, records)
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (20, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    assert result.get_response()["model_version"] == "2"


def test_tritonclient_json_preprocessed_input(server: Any, iris: Predictor) -> None:
    import tritonclient.http as triton

    records = rows()[:10]
    features = iris.encode(records)  # what an exported ONNX / Triton model takes
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    tensor = triton.InferInput("input", list(features.shape), "FP32")
    tensor.set_data_from_numpy(features, binary_data=False)
    outputs = [
        triton.InferRequestedOutput("label", binary_data=False),
        triton.InferRequestedOutput("probabilities", binary_data=True),
    ]
    result = client.infer("iris", [tensor], model_version="2", outputs=outputs)
    assert list(result.as_numpy("label")) == _expected(iris, records)  # JSON: str
    assert result.as_numpy("probabilities").shape == (10, 3)


def test_v2_versions_aliases_and_errors(client: httpx.Client, iris: Predictor) -> None:
    record = rows()[60]
    body = {
        "inputs": [
            {"name": k, "shape": [1], "datatype": "BYTES", "data": [v]} for k, v in record.items()
        ]
    }
    answer = client.post("/v2/models/iris/versions/1/infer", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["model_version"] == "1"
    assert client.post("/v2/models/iris/versions/7/infer", json=body).status_code == 404
    missing = {"inputs": body["inputs"][:3]}
    answer = client.post("/v2/models/iris/infer", json=missing)
    assert answer.status_code == 400 and "petal_width" in answer.json()["error"]
    wrong_shape = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32",
                               "data": [1, 2, 3]}]}  # fmt: skip
    answer = client.post("/v2/models/iris/infer", json=wrong_shape)
    assert answer.status_code == 400 and "expected [N, 4]" in answer.json()["error"]
    short = {"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [1]}]}
    answer = client.post("/v2/models/iris/infer", json=short)
    assert answer.status_code == 400 and "shape" in answer.json()["error"]
    bad_type = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
                            "data": ["a", "b", "c", "d"]}]}  # fmt: skip
    answer = client.post("/v2/models/iris/infer", json=bad_type)
    assert answer.status_code == 400 and "FP32" in answer.json()["error"]
    answer = client.post("/v2/models/nope/infer", json=body)
    assert answer.status_code == 404 and "nope" in answer.json()["error"]


def test_regression_answers_value(client: httpx.Client, project: Path) -> None:
    records = rows("diabetes.csv", "progression")[:5]
    with Project.open(project) as opened:
        expected = [
            a["value"] for a in Predictor.from_project(opened, "diabetes").predict(records)
        ]
    inputs = [
        {"name": k, "shape": [5], "datatype": "FP64", "data": [float(r[k]) for r in records]}
        for k in records[0]
    ]
    answer = client.post("/v2/models/diabetes/infer", json={"inputs": inputs})
    assert answer.status_code == 200, answer.text
    (value,) = answer.json()["outputs"]
    assert value["name"] == "value" and value["shape"] == [5]
    np.testing.assert_allclose(value["data"], expected, rtol=1e-5)
    answer = client.post("/predict", json={"model": "diabetes", "records": records})
    np.testing.assert_allclose([p["value"] for p in answer.json()["predictions"]], expected)


def test_mlflow_scoring_payloads(client: httpx.Client, iris: Predictor) -> None:
    records = rows()[40:60]
    expected = _expected(iris, records)
    frame = pd.DataFrame(records).astype(float)
    payloads = [
        {"dataframe_split": frame.to_dict(orient="split")},
        {"dataframe_records": frame.to_dict(orient="records")},
        {"instances": frame.to_dict(orient="records")},
        {"inputs": frame.to_dict(orient="list")},
        {"inputs": iris.encode(records).tolist()},  # a tensor of features
    ]
    for payload in payloads:
        answer = client.post("/invocations?model=iris:2", json=payload)
        assert answer.status_code == 200, (payload.keys(), answer.text)
        assert answer.json() == {"predictions": expected}
    csv_text = frame.to_csv(index=False)
    answer = client.post(
        "/invocations",
        params={"model": "iris"},
        content=csv_text,
        headers={"Content-Type": "text/csv"},
    )
    assert answer.status_code == 200 and answer.json()["predictions"] == expected
    answer = client.post(
        "/invocations?model=iris",
        json={"dataframe_records": records[:2], "params": {"probabilities": True}},
    )
    assert set(answer.json()["predictions"][0]) == {"label", "probabilities"}
    for ping in ("/ping", "/health", "/version"):
        assert client.get(ping).status_code == 200
    bad = client.post("/invocations?model=iris", json={"rows": []})
    assert bad.status_code == 400 and bad.json()["error_code"] == "BAD_REQUEST"
    several = client.post("/invocations", json={"dataframe_records": records[:1]})
    assert several.status_code == 400 and "diabetes" in several.json()["message"]


def test_mlflow_scoring_client(server: Any, iris: Predictor) -> None:
    """MLflow's own ScoringServerClient (mlflow-skinny, a dev dependency)."""
    import subprocess
    import sys

    python = Path(sys.executable)
    records = rows()[:5]
    script = (
        "import sys, json, pandas as pd\n"
        "from mlflow.pyfunc.scoring_server.client import ScoringServerClient\n"
        "host, port = sys.argv[1].removeprefix('http://').split(':')\n"
        "client = ScoringServerClient(host, int(port))\n"
        "client.wait_server_ready(timeout=10)\n"
        "frame = pd.DataFrame(json.loads(sys.argv[2]))\n"
        "answer = client.invoke(frame).get_predictions()\n"  # a DataFrame, as from MLflow
        "print(json.dumps(answer.iloc[:, 0].tolist()))\n"
    )
    import json

    # One model answers plain /invocations: serve iris:2 alone on a second server.
    with running(None, parts=[iris.parts], log=False) as single:
        done = subprocess.run(
            [str(python), "-c", script, single.url, json.dumps(records)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    predictions = json.loads(done.stdout.strip().splitlines()[-1])
    assert predictions == _expected(iris, records)


def test_native_predict_feedback_and_log(
    client: httpx.Client, server: Any, project: Path, iris: Predictor
) -> None:
    records = rows()[:3]
    answer = client.post("/predict", json={"model": "iris:2", "records": records})
    assert answer.status_code == 200
    payload = answer.json()
    request_id = answer.headers["x-request-id"]
    assert payload["request_id"] == request_id and payload["model"] == "iris:2"
    assert [p["label"] for p in payload["predictions"]] == _expected(iris, records)
    assert client.post("/predict", json=records).status_code == 400  # two models: name one
    given = client.post("/feedback", json={"request_id": request_id, "label": "setosa", "row": 2})
    assert given.status_code == 200 and given.json()["stored"] is True
    unknown = client.post("/feedback", json={"request_id": "nope", "label": "setosa"})
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]
    out_of_range = client.post(
        "/feedback", json={"request_id": request_id, "label": "x", "row": 3}
    )
    assert out_of_range.status_code == 400
    server.flush()
    deadline = time.monotonic() + 5
    with Project.open(project) as opened:
        while not opened.serving.feedback_for(request_id) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert opened.serving.feedback_for(request_id) == [(2, "setosa")]
        logged = opened.serving.find_request(request_id)
    assert logged is not None and logged.protocol == "predict"
    assert (logged.model, logged.version, logged.status, logged.n_rows) == ("iris", 2, 200, 3)
    assert logged.inputs == records and logged.outputs == payload["predictions"]


def test_every_answer_has_an_id_and_json_errors(client: httpx.Client) -> None:
    for method, path, body in [
        ("GET", "/nowhere", None),
        ("POST", "/predict", b"{not json"),
        ("POST", "/predict", b"[]"),
        ("GET", "/v2/models/iris/versions/9", None),
        ("DELETE", "/predict", None),
        ("POST", "/v2/models/iris/infer", b'{"inputs": 3}'),
    ]:
        answer = client.request(method, path, content=body)
        assert 400 <= answer.status_code < 500, (path, answer.status_code)
        assert answer.headers["content-type"].startswith("application/json")
        assert answer.json()["error"]
        assert len(answer.headers["x-request-id"]) == 32
    ok = client.get("/v2/health/live")
    assert ok.status_code == 200 and ok.headers["x-request-id"]


def test_metrics_openapi_and_docs(client: httpx.Client) -> None:
    client.post("/predict", json={"model": "iris", "records": rows()[:1]})
    metrics = client.get("/metrics").text
    assert 'lepton_requests_total{model="iris",protocol="predict",status="200",version="2"}' in (
        metrics
    )
    assert "lepton_request_latency_seconds_bucket" in metrics
    assert "lepton_batch_rows_bucket" in metrics
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"] == "#/components/schemas/PredictRequest"
    record = schema["components"]["schemas"]["PredictRequest"]["properties"]["records"]
    assert "petal_width" in record["items"]["properties"]
    assert client.get("/docs").status_code == 200


def test_csv_body_from_a_file(client: httpx.Client) -> None:
    text = io.StringIO()
    pd.DataFrame(rows()[:4]).to_csv(text, index=False)
    answer = client.post(
        "/invocations?model=iris", content=text.getvalue(), headers={"Content-Type": "text/csv"}
    )
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 4
    broken = client.post(
        "/invocations?model=iris", content="a,b\n1,2,3\n", headers={"Content-Type": "text/csv"}
    )
    assert broken.status_code == 400


def test_numeric_fast_path_equals_the_full_pipeline() -> None:
    from lepton_desktop.core.preprocessing.tabular import NumericPlan, apply_pipeline

    pipeline = [
        {"step": "input", "columns": [{"name": "a", "dtype": "numeric"},
                                      {"name": "b", "dtype": "numeric"}]},
        {"step": "fill", "method": "mean", "values": {"a": 1.0, "b": 2.0}, "columns": ["a", "b"]},
        {"step": "scale", "method": "standard",
         "columns": {"a": {"mean": 3.0, "std": 2.0}, "b": {"mean": -1.0, "std": 0.0}}},
        {"step": "scale", "method": "minmax", "columns": {"a": {"min": -1.0, "max": 3.0}}},
        {"step": "features", "names": ["b", "a"]},
    ]  # fmt: skip
    records = [{"a": 5.0, "b": 7}, {"a": -2.5, "b": 0.25, "extra": "x"}]
    plan = NumericPlan.compile(pipeline)
    assert plan is not None
    fast = plan.encode(records)
    _, general = apply_pipeline(pipeline, records)
    # The same float64 operations in the same order: identical, not merely close.
    np.testing.assert_array_equal(fast, general.astype(np.float32))
    for odd in ({"a": "5", "b": 1.0}, {"a": None, "b": 1.0}, {"b": 1.0}, {"a": True, "b": 1}):
        assert plan.encode([odd]) is None  # text, missing, bool: the full pipeline decides
    text = [*pipeline[:1], {"step": "input", "columns": [{"name": "c", "dtype": "text"}]}]
    assert NumericPlan.compile(text) is None
