"""Retrain with feedback on a dataset prepared with fill, scaling and one-hot columns.

A real server answers raw records (the units clients send, a categorical ``colour``
among them) of a model trained on the prepared version; labels come back through
``/feedback``. The new version's added rows are those records through the prepared
version's recorded steps, checked here against the fitted parameters themselves: each
numeric feature ``(x - mean) / std``, a missing value the fitted mean scaled, one 0/1
column per colour seen in training; the held-out rows stay the champion's.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from lepton_desktop.core.datasets.frame import load_frame
from lepton_desktop.core.datasets.prep import PrepOptions
from lepton_desktop.core.progress import NullReporter
from lepton_desktop.core.project import Project
from tests.conftest import SAMPLE_DATA
from tests.serving_factory import running

pytestmark = pytest.mark.slow
COLOURS = ("red", "green", "blue")
NUMERIC = ("sepal_length", "sepal_width", "petal_length", "petal_width")


def _coloured_iris(path: Path) -> list[dict[str, str]]:
    """iris with a categorical ``colour`` column, written to ``path``; its rows."""
    with open(SAMPLE_DATA / "iris.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    for i, row in enumerate(table):
        row["colour"] = COLOURS[i % 3]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, [*table[0].keys()])
        writer.writeheader()
        writer.writerows(table)
    return table


@pytest.fixture
def prepped(tmp_path: Path) -> tuple[Path, list[dict[str, str]]]:
    table = _coloured_iris(tmp_path / "coloured.csv")
    path = tmp_path / "prepped.lepton"
    with Project.create(path) as project:
        project.import_dataset(tmp_path / "coloured.csv", "iris", target="species")
        project.prep("iris", PrepOptions(fill="mean", scale="standard", onehot=True,
                                         split=(0.7, 0.15, 0.15), seed=0))  # fmt: skip
        project.train("iris:2", arch="mlp", epochs=2, model_name="iris")
    return path, table


def _served_records(table: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Raw records as clients send them: numbers as text, one value missing, one colour."""
    records: list[dict[str, Any]] = []
    for i in range(30):
        row = table[(i * 5) % len(table)]
        record: dict[str, Any] = {k: v for k, v in row.items() if k != "species"}
        if i == 4:
            record["petal_width"] = None  # filled with the training mean, then scaled
        records.append(record)
    return records


def test_served_rows_go_through_the_recorded_prep(
    prepped: tuple[Path, list[dict[str, str]]],
) -> None:
    path, table = prepped
    records = _served_records(table)
    labels = [table[(i * 5) % len(table)]["species"] for i in range(len(records))]
    with running(path) as runner, httpx.Client(base_url=runner.url, timeout=30) as client:
        for record, label in zip(records, labels, strict=True):
            answer = client.post("/predict", json={"model": "iris", "records": [record]})
            assert answer.status_code == 200, answer.text
            sent = client.post("/feedback", json={"request_id": answer.headers["x-request-id"],
                                                  "label": label})  # fmt: skip
            assert sent.status_code == 200, sent.text
    with Project.open(path) as project:
        result = project.retrain_with_feedback("iris")
        assert result["dataset"] == "iris:3" and result["parent"] == "iris:2"
        assert result["feedback_rows"] == len(records) and result["refused"] == 0
        assert result["candidate"] == "iris:2" and set(result["metrics"]["candidate"]) >= {
            "accuracy", "f1"}  # fmt: skip
        prepared, grown = project.dataset("iris:2"), project.dataset("iris:3")
        assert grown.pipeline == [] and grown.operations[-1]["op"] == "add_feedback"
        steps = {step["step"]: step for step in prepared.pipeline}
        before = load_frame(project.conn, prepared, NullReporter())
        after = load_frame(project.conn, grown, NullReporter())
    assert list(after.columns) == list(before.columns)  # the prepared columns, as they were
    for code in (1, 2):  # validation and test: the champion's rows
        assert (after.split == code).sum() == (before.split == code).sum()
    added = np.arange(len(after.split)) >= len(before.split)  # appended, in the order served
    assert added.sum() == len(records) and set(after.split[added]) == {0}
    scale, fill = steps["scale"]["columns"], steps["fill"]["values"]
    for name in NUMERIC:
        raw = [float(r[name]) if r[name] is not None else fill[name] for r in records]
        expected = (np.array(raw) - scale[name]["mean"]) / scale[name]["std"]
        np.testing.assert_allclose(after.columns[name][added], expected, rtol=1e-12)
    assert not math.isnan(after.columns["petal_width"][added][4])
    assert steps["onehot"]["columns"] == {"colour": sorted(COLOURS)}
    for colour in COLOURS:
        expected_onehot = [1.0 if r["colour"] == colour else 0.0 for r in records]
        assert list(after.columns[f"colour={colour}"][added]) == expected_onehot
    assert list(after.columns["species"][added]) == labels
