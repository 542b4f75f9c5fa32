"""Replaying a version's stored pipeline on raw records gives the prepared rows."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lepton_desktop.core.datasets.prep import PrepOptions, pipeline_chain
from lepton_desktop.core.entities import DatasetVersion
from lepton_desktop.core.errors import LeptonError
from lepton_desktop.core.preprocessing.tabular import RecordError, apply_pipeline, apply_steps
from lepton_desktop.core.project import Project
from tests.conftest import SAMPLE_DATA

SPLIT = (0.6, 0.2, 0.2)
HEADER = ["size", "rooms", "city", "heating", "price"]


def houses(n: int = 80) -> list[list[Any]]:
    rng = np.random.default_rng(5)
    rows = []
    for i in range(n):
        size = None if i % 9 == 4 else round(float(rng.normal(90, 25)), 1)
        city = None if i % 13 == 7 else ["Oslo", "Lyon", "Porto", "Graz"][int(rng.integers(4))]
        heating = ["gas", "heat pump"][i % 2]
        rows.append([size, int(rng.integers(1, 7)), city, heating, round(100 + 3 * (size or 90))])
    return rows


def raw_csv(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows([["" if v is None else v for v in row] for row in houses()])
    return path


def csv_records(path: Path) -> list[dict[str, str]]:
    """The raw records exactly as a client would send the file's lines: all text."""
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def feature_rows(project: Project, version: DatasetVersion, names: list[str]) -> np.ndarray:
    rows = project.rows(version, 0, version.n_rows)
    index = [[c.name for c in version.columns].index(n) for n in names]
    return np.array([[math.nan if r[i] is None else r[i] for i in index] for r in rows], float)


@pytest.mark.parametrize("scale", ["standard", "minmax"])
def test_stored_pipeline_reproduces_the_prepared_rows(
    tmp_project: Path, tmp_path: Path, scale: str
) -> None:
    source = raw_csv(tmp_path / "houses.csv")
    with Project.open(tmp_project) as project:
        project.import_dataset(source, "houses", target="price")
        prepared = project.prep("houses", PrepOptions(fill="median", scale=scale, onehot=True,
                                                      split=SPLIT, seed=2))
        steps = pipeline_chain(project.conn, prepared)
        names, features = apply_pipeline(steps, csv_records(source))
        assert names == [c.name for c in prepared.columns if c.name != "price"]
        assert "city=Oslo" in names and "heating=gas" in names
        assert features.dtype == np.float64
        assert np.allclose(features, feature_rows(project, prepared, names))
        json.loads(json.dumps(steps, allow_nan=False))


def test_a_chain_of_preparations_replays_in_order(tmp_project: Path, tmp_path: Path) -> None:
    source = raw_csv(tmp_path / "houses.csv")
    with Project.open(tmp_project) as project:
        project.import_dataset(source, "houses", target="price")
        project.prep("houses", PrepOptions(fill="mean", split=SPLIT))
        project.prep("houses", PrepOptions(onehot=True))
        last = project.prep("houses", PrepOptions(scale="standard"))
        steps = pipeline_chain(project.conn, last)
        assert [s["step"] for s in steps].count("input") == 4  # the root's, then 3 versions'
        assert last.pipeline == steps[-4:-1]  # a version stores only its own steps
        names, features = apply_pipeline(steps, csv_records(source))
        assert np.allclose(features, feature_rows(project, last, names))


def test_a_version_never_prepared_still_names_its_features(tmp_project: Path) -> None:
    with Project.open(tmp_project) as project:
        iris = project.import_dataset(SAMPLE_DATA / "iris.csv", "iris", target="species")
        record = {"sepal_length": "5.1", "sepal_width": 3.5, "petal_length": 1.4,
                  "petal_width": 0.2, "species": "setosa"}
        names, features = apply_pipeline(pipeline_chain(project.conn, iris), [record])
        assert names == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
        assert features.tolist() == [[5.1, 3.5, 1.4, 0.2]]
        digits = project.import_dataset(SAMPLE_DATA / "digits", "digits")
        assert pipeline_chain(project.conn, digits) == []


def test_time_series_features_leave_out_time_and_target(tmp_project: Path) -> None:
    with Project.open(tmp_project) as project:
        project.import_dataset(SAMPLE_DATA / "diabetes.csv", "d", kind="timeseries",
                               time_column="age", target="progression")
        prepared = project.prep("d", PrepOptions(scale="minmax", split=SPLIT))
        names, _ = apply_pipeline(prepared.pipeline, [])
        assert names[:2] == ["sex", "bmi"] and "age" not in names and "progression" not in names


def numeric_steps() -> list[dict[str, Any]]:
    return [
        {"step": "input", "columns": [{"name": "x", "dtype": "numeric"},
                                      {"name": "c", "dtype": "categorical"}]},
        {"step": "fill", "method": "mean", "values": {"x": 2.0, "c": "b"}, "columns": ["x", "c"]},
        {"step": "scale", "method": "standard", "columns": {"x": {"mean": 1.0, "std": 2.0}}},
        {"step": "onehot", "columns": {"c": ["a", "b"]}},
        {"step": "features", "names": ["x", "c=a", "c=b"]},
    ]


def test_values_as_numbers_text_or_missing() -> None:
    records = [{"x": 3, "c": "a"}, {"x": "5.0", "c": None}, {"x": "", "c": "zebra", "y": 1},
               {"x": None, "c": ""}, {"x": float("nan"), "c": "b"}]
    names, features = apply_pipeline(numeric_steps(), records)
    assert names == ["x", "c=a", "c=b"]
    assert features.tolist() == [[1.0, 1, 0], [2.0, 0, 1], [0.5, 0, 0], [0.5, 0, 1], [0.5, 0, 1]]


def test_an_unknown_category_is_all_zeros() -> None:
    _, features = apply_pipeline(numeric_steps(), [{"x": 1, "c": "purple"}])
    assert features.tolist() == [[0.0, 0.0, 0.0]]


@pytest.mark.parametrize(("records", "message"), [
    ([{"x": 1, "c": "a"}, {"c": "a"}], "record 1: missing feature 'x'"),
    ([{"x": "ten", "c": "a"}], "record 0: feature 'x' must be a number, got 'ten'"),
    ([{"x": True, "c": "a"}], "feature 'x' must be a number, got True"),
    ([{"x": [1], "c": "a"}], "feature 'x' must be a number"),
])
def test_bad_records_name_the_record_and_the_feature(records: list[Any], message: str) -> None:
    with pytest.raises(RecordError, match=message):
        apply_pipeline(numeric_steps(), records)


def test_a_pipeline_that_dropped_missing_rows_refuses_missing_values() -> None:
    steps = [{"step": "input", "columns": [{"name": "x", "dtype": "numeric"}]},
             {"step": "fill", "method": "drop", "values": {}, "columns": ["x"]}]
    assert apply_pipeline(steps, [{"x": 1}])[1].tolist() == [[1.0]]
    with pytest.raises(RecordError, match="record 1: feature 'x' is missing"):
        apply_pipeline(steps, [{"x": 1}, {"x": None}])


def test_text_features_give_an_object_matrix() -> None:
    steps = [{"step": "input", "columns": [{"name": "n", "dtype": "numeric"},
                                           {"name": "t", "dtype": "text"}]}]
    names, features = apply_pipeline(steps, [{"n": 1, "t": True}])
    assert names == ["n", "t"]
    assert features.dtype == object and features.tolist() == [[1.0, "true"]]


def test_unknown_steps_are_refused() -> None:
    with pytest.raises(LeptonError, match="unknown preprocessing step 'pca'"):
        apply_steps([{"step": "pca"}], {})


def test_constant_columns_scale_without_dividing_by_zero() -> None:
    steps = [{"step": "input", "columns": [{"name": "x", "dtype": "numeric"}]},
             {"step": "scale", "method": "minmax", "columns": {"x": {"min": 4.0, "max": 4.0}}}]
    assert apply_pipeline(steps, [{"x": 4}, {"x": 6}])[1].tolist() == [[0.0], [2.0]]


def test_only_columns_the_features_use_are_required(tmp_project: Path) -> None:
    with Project.open(tmp_project) as project:
        iris = project.import_dataset(SAMPLE_DATA / "iris.csv", "iris")  # no target chosen
        chain = pipeline_chain(project.conn, iris)
        assert chain[-1]["names"][-1] == "species"  # a feature, as far as the data knows
        # A model that predicts species appends its own features step without it.
        numeric = {"step": "features", "names": chain[-1]["names"][:4]}
        record = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4,
                  "petal_width": 0.2}
        assert apply_pipeline([*chain, numeric], [record])[1].shape == (1, 4)
        with pytest.raises(RecordError, match="record 0: missing feature 'species'"):
            apply_pipeline(chain, [record])


def test_a_onehot_source_column_is_required() -> None:
    steps = numeric_steps()
    with pytest.raises(RecordError, match="record 0: missing feature 'c'"):
        apply_pipeline(steps, [{"x": 1}])
