"""Our drift agrees with Evidently's DataDriftPreset on a shifted real data set.

The diabetes table (with an age band made from its own age column, for a categorical
feature) is prepared with a split and standard scaling and a model is trained on it;
then every row is logged as served, with some columns shifted, some values missing,
and a category relabelled. Evidently 0.7 runs its DataDriftPreset on the training rows
(read straight from the stored split) against the same served rows; ours reads the
sketches the log's writer kept. Same tests, same drifted columns, the same dataset
verdict, and the same statistics within 1e-6.
"""

from __future__ import annotations

import csv
import os
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lepton_desktop.core.datasets.prep import PrepOptions
from lepton_desktop.core.project import Project
from lepton_desktop.core.store import serving as serving_store
from tests.conftest import SAMPLE_DATA

pytestmark = pytest.mark.slow

NUMERIC = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
#: Evidently's display names of its tests -> ours.
METHODS = {"K-S p_value": "ks", "chi-square p_value": "chisquare", "Z-test p_value": "z",
           "Wasserstein distance (normed)": "wasserstein",
           "Jensen-Shannon distance": "jensenshannon"}  # fmt: skip


def _table() -> list[dict[str, str]]:
    with open(SAMPLE_DATA / "diabetes.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["age_band"] = f"{int(float(row['age'])) // 10 * 10}s"
    return rows


def _served(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The rows as a drifted client sends them: text values, some shifted or missing."""
    served = []
    for i, row in enumerate(rows):
        record = {k: v for k, v in row.items() if k != "progression"}
        record["bmi"] = f"{float(row['bmi']) * 1.15:.3f}"
        record["s5"] = f"{float(row['s5']) + 0.25:.4f}"
        if i % 3 == 0 and record["age_band"] == "40s":
            record["age_band"] = "60s"
        if i % 40 == 0:
            record["bp"] = ""  # missing
        if i % 97 == 0:
            record["age_band"] = "90s"  # never seen in training
        served.append(record)
    return served


@pytest.fixture(scope="module")
def drifted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("drift-evidently")
    rows = _table()
    source = folder / "diabetes_bands.csv"
    with open(source, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    path = folder / "drift.lepton"
    with Project.create(path) as project:
        project.import_dataset(source, "diabetes", target="progression")
        options = PrepOptions(scale="standard", onehot=True, split=(0.7, 0.15, 0.15), seed=4)
        prepared = project.prep("diabetes", options)
        project.train(prepared.ref, arch="mlp", epochs=1, model_name="diabetes")
        served = _served(rows)
        now = time.time()
        serving_store.add_requests(project.conn, [
            {"ts": now - 600 + i, "request_id": uuid.uuid4().hex, "method": "POST",
             "path": "/predict", "protocol": "native", "model": "diabetes", "version": 1,
             "status": 200, "latency_ms": 1.0, "n_rows": 1, "inputs": [record],
             "outputs": [{"value": 150.0 + i % 7}]}
            for i, record in enumerate(served)
        ])  # fmt: skip
        table = prepared.table
    conn = sqlite3.connect(path)
    split = [r[0] for r in conn.execute(f"SELECT _split FROM {table} ORDER BY rowid")]
    conn.close()
    reference = pd.DataFrame([r for r, s in zip(rows, split, strict=True) if s == 0])
    return path, _typed(reference), _typed(pd.DataFrame(served))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[[*NUMERIC, "age_band"]].copy()
    for name in NUMERIC:
        out[name] = pd.to_numeric(out[name].replace("", np.nan))
    return out


def _evidently(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, Any]:
    os.environ.setdefault("EVIDENTLY_DISABLE_TELEMETRY", "1")
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=["age_band"])
    snapshot = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )
    out: dict[str, Any] = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if "column" in config:
            out[config["column"]] = (METHODS[config["method"]], float(metric["value"]),
                                     float(config["threshold"]))  # fmt: skip
        else:
            out["(share)"] = metric["value"]["share"]
    return out


def _drifted(method: str, value: float, threshold: float) -> bool:
    if method == "ks":
        return value <= threshold
    if method in ("wasserstein", "jensenshannon"):
        return value >= threshold
    return value < threshold


def test_same_tests_statistics_and_verdicts_as_evidently(
    drifted: tuple[Path, pd.DataFrame, pd.DataFrame],
) -> None:
    path, reference, current = drifted
    theirs = _evidently(reference, current)
    share = theirs.pop("(share)")
    with Project.open(path) as project:
        report = project.monitor("all", model="diabetes")
    ours = {row["feature"]: row for row in report["drift"] if row["role"] == "feature"}
    assert set(ours) == set(NUMERIC) | {"age_band"}
    for feature, (method, value, threshold) in theirs.items():
        mine = ours[feature]
        assert mine["test"] == method, feature
        score = mine["statistic"] if mine["p_value"] is None else mine["p_value"]
        assert score == pytest.approx(value, abs=1e-6), (feature, method)
        assert mine["drifted"] == _drifted(method, value, threshold), feature
        assert mine["reference_rows"] == reference[feature].notna().sum()
        assert mine["current_rows"] == current[feature].notna().sum()
    assert {f for f, r in ours.items() if r["drifted"]} == {
        f for f, (m, v, t) in theirs.items() if _drifted(m, v, t)
    } >= {"bmi", "s5", "age_band"}
    assert report["drift_summary"]["share"] == pytest.approx(share, abs=1e-12)


def test_ks_statistic_is_exact_against_scipy(
    drifted: tuple[Path, pd.DataFrame, pd.DataFrame],
) -> None:
    from scipy import stats

    path, reference, current = drifted
    with Project.open(path) as project:
        report = project.monitor("all", model="diabetes")
    rows = {row["feature"]: row for row in report["drift"]}
    for feature in ("bmi", "s1", "s5", "bp"):
        expected = stats.ks_2samp(reference[feature].dropna(), current[feature].dropna())
        assert rows[feature]["ks"] == pytest.approx(expected.statistic, abs=1e-12)
        assert rows[feature]["p_value"] == pytest.approx(expected.pvalue, abs=1e-9)
    assert rows["bp"]["missing_share"] == pytest.approx(current["bp"].isna().mean())
    band = rows["age_band"]
    assert band["unseen"] == {"90s": int((current["age_band"] == "90s").sum())}
    assert band["unseen_share"] == pytest.approx((current["age_band"] == "90s").mean())
