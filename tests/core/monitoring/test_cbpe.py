"""CBPE: accuracy estimated from a real served model's probabilities, before labels.

NannyML itself cannot be installed here (it pins lightgbm, plotly and kaleido builds
this machine's package index does not have), so the estimate is checked against a
direct computation with scikit-learn: the calibration error against
``calibration_curve`` on the version's real test-split probabilities, the isotonic
maps against ``IsotonicRegression`` fitted on its validation split, and the estimate
against the labels that arrive later (realised accuracy) on the same served rows.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx
import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.isotonic import IsotonicRegression

from lepton_desktop.core.monitoring import cbpe
from lepton_desktop.core.project import Project
from lepton_desktop.core.store import models as model_store
from tests.conftest import SAMPLE_DATA
from tests.serving_factory import copy_project, rows, running, serving_project  # noqa: F401

pytestmark = pytest.mark.slow


def _truths() -> list[str]:
    import csv

    with open(SAMPLE_DATA / "iris.csv", newline="") as handle:
        return [r["species"] for r in csv.DictReader(handle)]


def test_ece_is_calibration_curves_gap(serving_project: Path, tmp_path: Path) -> None:  # noqa: F811
    with Project.open(copy_project(serving_project, tmp_path)) as project:
        registered = model_store.resolve(project.conn, "iris:1")
        parts = cbpe._split_probabilities(project.ctx, registered)
    probabilities, truth = parts["test"]
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == truth
    observed, predicted = calibration_curve(correct, confidence, n_bins=cbpe.ECE_BINS)
    counts = np.histogram(confidence, bins=np.linspace(0, 1, cbpe.ECE_BINS + 1))[0]
    # calibration_curve drops empty bins; its bins put an edge value below, as ours.
    weights = counts[counts > 0] / len(truth)
    expected = float(np.sum(weights * np.abs(observed - predicted)))
    assert cbpe.expected_calibration_error(probabilities, truth) == pytest.approx(expected)
    # The maps are scikit-learn's isotonic fits on the validation split, per class.
    val_p, val_y = parts["val"]
    maps = cbpe.fit_maps(val_p, val_y)
    for k, knots in enumerate(maps):
        fitted = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(
            val_p[:, k], (val_y == k).astype(float))
        np.testing.assert_allclose(np.interp(probabilities[:, k], knots["x"], knots["y"]),
                                   fitted.predict(probabilities[:, k]))  # fmt: skip


def test_served_rows_get_an_estimate_near_the_realised_accuracy(
    serving_project: Path, tmp_path: Path  # noqa: F811
) -> None:
    project = copy_project(serving_project, tmp_path)
    iris, truth = rows(), _truths()
    with running(project, models=["iris:1"]) as runner, \
            httpx.Client(base_url=runner.url, timeout=10) as client:  # fmt: skip
        for start in range(0, 150, 3):
            answer = client.post("/predict", json={"model": "iris", "records":
                                                   iris[start : start + 3]})  # fmt: skip
            assert answer.status_code == 200, answer.text
            request_id = answer.headers["x-request-id"]
            for row in range(3):
                label = {"request_id": request_id, "label": truth[start + row], "row": row}
                client.post("/feedback", json=label)
    with Project.open(project) as opened:
        report = opened.monitor("all", model="iris")
        estimator = cbpe.ensure(opened.ctx, "iris", 1, build_missing=False)
    assert estimator is not None and estimator["calibration"] in ("none", "isotonic")
    estimated, realised = report["estimated_quality"], report["quality"]
    assert estimated["method"] == "CBPE" and estimated["rows"] == 150
    assert estimated["versions"]["1"]["calibration"] == estimator["calibration"]
    # The estimate by hand from the logged probabilities and the stored maps.
    conn = sqlite3.connect(project)
    outputs = [json.loads(o) for (o,) in conn.execute(
        "SELECT outputs FROM request_log WHERE model = 'iris' AND status = 200")]
    conn.close()
    classes = estimator["classes"]
    matrix = np.array([[a["probabilities"][c] for c in classes] for o in outputs for a in o])
    given = np.array([classes.index(a["label"]) for o in outputs for a in o])
    calibrated = cbpe.calibrate(matrix, estimator["maps"])
    by_hand = float(calibrated[np.arange(len(given)), given].mean())
    assert estimated["metrics"]["accuracy"] == pytest.approx(by_hand)
    # On iris the estimate lands near what the labels later say.
    assert abs(estimated["metrics"]["accuracy"] - realised["metrics"]["accuracy"]) < 0.15
    assert 0 <= estimated["metrics"]["f1"] <= 1
