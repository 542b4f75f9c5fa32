"""Non-finite feature values get a 400 naming the feature, in every protocol.

Before the fix, ``"sepal_length": "inf"`` (or Infinity, NaN, 1e309) was answered 200
with ``probabilities: null``: the model was fed an infinity and answered NaN.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.serving_factory import copy_project, rows, running, serving_project

__all__ = ["serving_project"]
NON_FINITE = ["inf", "Infinity", "-inf", " -INFINITY ", "1e309", "NaN", "nan"]


@pytest.fixture(scope="module")
def server(serving_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    project = copy_project(serving_project, tmp_path_factory.mktemp("bad-values"))
    with running(project, log=False) as runner:
        yield runner


@pytest.fixture(scope="module")
def client(server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def _record(**changes: Any) -> dict[str, Any]:
    return {**rows()[0], **changes}


@pytest.mark.parametrize("value", NON_FINITE)
def test_predict_names_the_feature(client: httpx.Client, value: str) -> None:
    answer = client.post(
        "/predict", json={"model": "iris", "records": [_record(), _record(sepal_length=value)]}
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"].startswith(
        f"record 1: feature 'sepal_length' must be a finite number, got {value!r}"
    )


def test_json_numbers_beyond_a_double_are_refused(client: httpx.Client) -> None:
    body = b'{"model": "iris", "records": [{"sepal_length": 1e309, "sepal_width": 3.5, ' \
        b'"petal_length": 1.4, "petal_width": 0.2}]}'  # fmt: skip
    answer = client.post("/predict", content=body)
    assert answer.status_code == 400 and "infinity" in answer.json()["error"]


def test_missing_values_are_still_filled(client: httpx.Client) -> None:
    for missing in (None, ""):
        answer = client.post(
            "/predict", json={"model": "iris", "records": [_record(petal_width=missing)]}
        )
        assert answer.status_code == 200, answer.text
        (prediction,) = answer.json()["predictions"]
        assert all(np.isfinite(list(prediction["probabilities"].values())))


def test_mlflow_payloads_name_the_feature(client: httpx.Client) -> None:
    columns = list(_record())
    data = [[("inf" if c == "petal_length" else v) for c, v in _record().items()]]
    payloads: list[dict[str, Any]] = [
        {"dataframe_split": {"columns": columns, "data": data}},
        {"dataframe_records": [_record(petal_length="Infinity")]},
        {"inputs": {c: [v] for c, v in _record(petal_length="-inf").items()}},
    ]
    for payload in payloads:
        answer = client.post("/invocations?model=iris", json=payload)
        assert answer.status_code == 400, answer.text
        assert "feature 'petal_length' must be a finite number" in answer.json()["message"]
    csv_text = ",".join(columns) + "\n" + ",".join(str(v) for v in data[0]) + "\n"
    answer = client.post(
        "/invocations?model=iris", content=csv_text, headers={"Content-Type": "text/csv"}
    )
    assert answer.status_code == 400
    assert "feature 'petal_length' must be a finite number" in answer.json()["message"]
    features = [[5.1, 3.5, "inf", 0.2]]  # already preprocessed: a tensor of features
    answer = client.post("/invocations?model=iris", json={"instances": features})
    assert answer.status_code == 400
    assert "record 0: feature 'petal_length' must be a finite number" in answer.json()["message"]


def test_v2_tensors_name_the_feature(server: Any) -> None:
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    raw = []
    for name, value in _record().items():
        tensor = triton.InferInput(name, [1, 1], "FP32")
        number = np.inf if name == "sepal_width" else float(value)
        tensor.set_data_from_numpy(np.array([[number]], np.float32))  # binary: inf travels
        raw.append(tensor)
    with pytest.raises(InferenceServerException, match="feature 'sepal_width' must be a finite"):
        client.infer("iris", raw)
    text = triton.InferInput("sepal_width", [1], "BYTES")
    text.set_data_from_numpy(np.array([b"NaN"], dtype=object))
    with pytest.raises(InferenceServerException, match="feature 'sepal_width' must be a finite"):
        client.infer("iris", [*[t for t in raw if t.name() != "sepal_width"], text])
    features = triton.InferInput("input", [1, 4], "FP32")
    features.set_data_from_numpy(np.array([[0.1, -0.2, np.nan, 0.3]], np.float32))
    with pytest.raises(InferenceServerException, match="feature 'petal_length' must be a finite"):
        client.infer("iris", [features])
