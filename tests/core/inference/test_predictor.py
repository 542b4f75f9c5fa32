"""The Predictor: raw records in, answers out, equal to what training evaluated."""

from __future__ import annotations

import base64
import csv
import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lepton_desktop.core.inference.predictor import InvalidInputError, ModelParts, Predictor
from lepton_desktop.core.preprocessing.check import PipelineError
from lepton_desktop.core.project import Project
from tests.conftest import SAMPLE_DATA


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("predictor") / "p.lepton"
    with Project.create(path) as project:
        project.import_dataset(SAMPLE_DATA / "iris.csv", "iris", target="species")
        project.train("iris", arch="mlp", epochs=30, model_name="iris")
        project.import_dataset(SAMPLE_DATA / "diabetes.csv", "diabetes", target="progression")
        project.train("diabetes", arch="mlp", epochs=5, model_name="diabetes")
        project.import_dataset(SAMPLE_DATA / "nile.csv", "nile", kind="timeseries")
        project.train("nile", arch="rnn", epochs=3, window=8, model_name="nile")
    return path


def _rows(name: str) -> list[dict[str, str]]:
    with open(SAMPLE_DATA / name, newline="") as handle:
        return list(csv.DictReader(handle))


def test_classification_answers_labels_from_raw_csv_records(trained: Path) -> None:
    with Project.open(trained) as project:
        predictor = Predictor.from_project(project, "iris")
    rows = _rows("iris.csv")
    answers = predictor.predict(rows)
    accuracy = np.mean([a["label"] == r["species"] for a, r in zip(answers, rows, strict=True)])
    assert accuracy > 0.9
    assert set(answers[0]["probabilities"]) == set(predictor.classes or [])
    assert abs(sum(answers[0]["probabilities"].values()) - 1) < 1e-5


def test_regression_answers_values_in_target_units(trained: Path) -> None:
    with Project.open(trained) as project:
        predictor = Predictor.from_project(project, "diabetes:1")
    rows = _rows("diabetes.csv")[:50]
    values = [a["value"] for a in predictor.predict(rows)]
    assert 25 < np.mean(values) < 350  # the target's range, not standardized units


def test_forecast_reads_the_last_window(trained: Path) -> None:
    with Project.open(trained) as project:
        predictor = Predictor.from_project(project, "nile")
    column = predictor.raw_inputs[0]["name"]
    series = [float(r[column]) for r in _rows("nile.csv")]
    (answer,) = predictor.predict([{column: series[-20:]}])
    assert 400 < answer["value"] < 1400
    with pytest.raises(InvalidInputError, match="has 3 values"):
        predictor.predict([{column: series[:3]}])


def test_bad_records_name_the_record_and_the_feature(trained: Path) -> None:
    with Project.open(trained) as project:
        predictor = Predictor(ModelParts.from_project(project, "iris"))
    row = _rows("iris.csv")[0]
    missing = {k: v for k, v in row.items() if k != "petal_length"}
    with pytest.raises(InvalidInputError, match="record 1: missing feature 'petal_length'"):
        predictor.encode([row, missing])
    with pytest.raises(InvalidInputError, match="must be a number"):
        predictor.encode([{**row, "sepal_width": "wide"}])
    with pytest.raises(InvalidInputError, match="expected \\[N, 4\\]"):
        predictor.check_inputs(np.zeros((2, 3)))


def test_images_accept_base64(tmp_project: Path) -> None:
    with Project.open(tmp_project) as project:
        project.import_dataset(SAMPLE_DATA / "digits", "digits")
        project.train("digits", arch="cnn", epochs=1, model_name="digits")
        predictor = Predictor.from_project(project, "digits")
    picture = next((SAMPLE_DATA / "digits").rglob("*.png"))
    (answer,) = predictor.predict([{"image": base64.b64encode(picture.read_bytes()).decode()}])
    assert answer["label"] in (predictor.classes or [])
    with pytest.raises(InvalidInputError, match="not a readable image"):
        predictor.predict([{"image": base64.b64encode(b"junk").decode()}])


def test_non_finite_values_are_refused_naming_the_feature(trained: Path) -> None:
    with Project.open(trained) as project:
        predictor = Predictor.from_project(project, "iris")
    row = _rows("iris.csv")[0]
    for value in ("inf", "-Infinity", "1e309", "NaN", float("inf"), 10**400):
        with pytest.raises(
            InvalidInputError, match="record 1: feature 'sepal_width' must be a finite number"
        ):
            predictor.encode([row, {**row, "sepal_width": value}])
    for missing in (None, "", float("nan")):  # missing, as training saw it: filled
        x = predictor.encode([{**row, "sepal_width": missing}])
        assert np.isfinite(x).all()
    features = predictor.encode([row])
    features[0, 2] = np.inf
    with pytest.raises(InvalidInputError, match="record 0: feature 'petal_length' must be"):
        predictor.check_inputs(features)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"step": "quantile_clip"}, "step 1 is 'quantile_clip', which this release"),
        ({"step": "scale", "method": "robust", "columns": {}}, "'method' must be standard"),
        ({"step": "scale", "method": "standard", "columns": {"x": {"mean": 0}}},
         "finite mean and std"),
        ({"step": "fill", "method": "mean", "columns": ["x"]}, "'values' must map"),
        ({"step": "image", "mode": "RGB", "size": [10**6, 10**6], "mean": 0, "std": 1},
         "each 1 to 4096 pixels"),
        ({"step": "window", "column": "y", "window": 0, "horizon": 1, "mean": 0, "std": 1},
         "'window' and 'horizon' must be whole numbers"),
        ("scale", "step 1 is None"),
    ],
)  # fmt: skip
def test_a_pipeline_this_release_cannot_apply_is_refused_at_load(
    trained: Path, step: Any, message: str
) -> None:
    with Project.open(trained) as project:
        parts = ModelParts.from_project(project, "iris")
    pipeline = [parts.pipeline[0], step, *parts.pipeline[1:]]
    with pytest.raises(PipelineError, match="model iris:1: preprocessing .*" + re.escape(message)):
        Predictor(dataclasses.replace(parts, pipeline=pipeline))
