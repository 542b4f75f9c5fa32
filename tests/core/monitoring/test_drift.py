"""Drift sketches and anomaly flags kept by the log's writer, read back over windows.

A trained iris project gets logged requests through the writer's own store function
(``add_requests``: the same roll-up step as the journal shipper); the tests check that
a reference stored after the rows counts them exactly as the writer would have, that
hourly and per-minute sketches agree, that every anomaly kind is counted exactly, that
malformed or hostile inputs are counted as missing or unseen without failing the batch
(and within the caps), PSI against its formula on the raw values, and the service
spikes on a series with a known burst.
"""

from __future__ import annotations

import csv
import json
import math
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lepton_desktop.core.monitoring import anomalies, drift, drift_tests, reference, window
from lepton_desktop.core.monitoring.traffic import Series
from lepton_desktop.core.project import Project
from lepton_desktop.core.store import drift as drift_store
from lepton_desktop.core.store import drift_sketch
from lepton_desktop.core.store import serving as serving_store
from tests.conftest import SAMPLE_DATA
from tests.helpers import snapshot

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("drift") / "iris.lepton"
    with Project.create(path) as project:
        project.import_dataset(SAMPLE_DATA / "iris.csv", "iris", target="species")
        project.train("iris", arch="mlp", epochs=1, model_name="iris")
    return path


@pytest.fixture
def project(trained: Path, tmp_path: Path) -> Iterator[Project]:
    copy = tmp_path / "copy.lepton"
    copy.write_bytes(trained.read_bytes())
    with Project.open(copy) as opened:
        yield opened


def _iris() -> list[dict[str, str]]:
    with open(SAMPLE_DATA / "iris.csv", newline="") as handle:
        return [{k: v for k, v in r.items() if k != "species"} for r in csv.DictReader(handle)]


def _log(project: Project, records: list[Any], start: float, step: float = 1.0,
         label: str = "setosa") -> list[str]:  # fmt: skip
    ids = [uuid.uuid4().hex for _ in records]
    serving_store.add_requests(project.conn, [
        {"ts": start + i * step, "request_id": ids[i], "method": "POST", "path": "/predict",
         "protocol": "native", "model": "iris", "version": 1, "status": 200,
         "latency_ms": 1.0, "n_rows": 1, "inputs": [record], "outputs": [{"label": label}]}
        for i, record in enumerate(records)
    ])  # fmt: skip
    return ids


def _shifted(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{**r, "petal_length": str(float(r["petal_length"]) + 2.0)} for r in rows]


def _counts(project: Project, grain: str, first: int, last: int) -> tuple[int, np.ndarray]:
    profile = drift_store.reference(project.conn, "iris", 1)
    assert profile is not None
    size = drift_sketch.Layout.of(profile).size
    rows, counts, _, _ = drift_store.sketch(project.conn, "iris", [1], first, last, grain, size)
    return rows, counts


def test_a_reference_stored_later_counts_the_older_rows_as_the_writer_does(
    project: Project, trained: Path, tmp_path: Path
) -> None:
    start = time.time() - 3000
    _log(project, _shifted(_iris()), start)  # no reference yet: nothing sketched
    assert drift_store.reference(project.conn, "iris", 1) is None
    reference.ensure(project.ctx, "iris", 1)  # backfills the 150 rows
    backfilled = _counts(project, "minutes", 0, 2**40)
    other = tmp_path / "writer.lepton"
    other.write_bytes(trained.read_bytes())
    with Project.open(other) as second:
        reference.ensure(second.ctx, "iris", 1)  # first the reference, then the rows
        _log(second, _shifted(_iris()), start)
        written = _counts(second, "minutes", 0, 2**40)
        hourly = _counts(second, "hours", 0, 2**40)
    assert backfilled[0] == written[0] == hourly[0] == 150
    assert np.array_equal(backfilled[1], written[1])
    assert np.array_equal(written[1], hourly[1])


def test_windows_read_only_their_minutes(project: Project) -> None:
    reference.ensure(project.ctx, "iris", 1)
    now = time.time()
    _log(project, _iris(), now - 7200, step=0.5)  # two hours ago: as trained
    _log(project, _shifted(_iris()), now - 600, step=0.5)  # the last 10 minutes: shifted
    recent = drift.evaluate(project.ctx, window.parse("15m", now), "iris", None)
    everything = drift.evaluate(project.ctx, window.parse("all", now), "iris", None)
    assert recent.rows == 150 and everything.rows == 300
    recent_rows = {f.feature: f for f in recent.features}
    assert recent_rows["petal_length"].drifted and recent_rows["petal_length"].test == "ks"
    assert not recent_rows["sepal_width"].drifted
    assert {f.feature for f in recent.features} == {*FEATURES, "prediction"}


def test_every_anomaly_kind_is_counted_exactly(project: Project) -> None:
    reference.ensure(project.ctx, "iris", 1)
    profile = drift_store.reference(project.conn, "iris", 1)
    assert profile is not None
    ranges = {s["name"]: (s["min"], s["max"]) for s in profile["features"]}
    inside = {name: str((low + high) / 2) for name, (low, high) in ranges.items()}
    records = [
        inside,  # the middle of every range: nothing to flag
        {**inside, "petal_length": str(ranges["petal_length"][1] + 1)},  # out of range
        {**inside, "sepal_width": None},  # missing
        {k: v for k, v in inside.items() if k != "petal_width"},  # missing (absent)
        {**inside, "sepal_length": str(ranges["sepal_length"][1] * 50)},  # far out: outlier
    ]
    ids = _log(project, records, time.time() - 60)
    report = project.monitor("15m", model="iris")["anomalies"]
    assert report["by_kind"]["out_of_range"] == 2
    assert report["by_kind"]["missing_feature"] == 2
    assert report["by_kind"]["outlier"] >= 1
    assert report["requests_flagged"] == 4 and report["rows_flagged"] == 4
    flagged = drift_store.flagged_requests(project.conn, "iris")
    assert {row[0] for row in flagged} == set(ids[1:])
    far = next(row for row in flagged if row[0] == ids[4])
    assert far[2] & drift_sketch.OUTLIER and far[4] > profile["outlier"]["threshold"]


def test_malformed_and_hostile_inputs_never_fail_the_batch(project: Project) -> None:
    reference.ensure(project.ctx, "iris", 1)
    good = _iris()[0]
    hostile: list[Any] = [
        {**good, "sepal_length": "x" * 100_000},  # not a number: missing
        {**good, "petal_width": "inf"},  # infinite: missing, as Evidently drops it
        {**good, "petal_length": [1, 2]},  # a list: missing
        "not a record",  # not an object: not a row
        {**good, "extra": "ignored"},  # an unknown key: ignored
    ]
    before = serving_store.request_count(project.conn)
    _log(project, hostile, time.time() - 30)
    serving_store.add_requests(project.conn, [{
        "ts": time.time() - 20, "request_id": uuid.uuid4().hex, "method": "POST",
        "path": "/predict", "model": "iris", "version": 1,
        "status": 200, "latency_ms": 1.0, "n_rows": 1, "inputs": "{not json",
        "outputs": "[{\"label\": 7}]"}])  # fmt: skip
    assert serving_store.request_count(project.conn) == before + 6  # every row logged
    found = {f.feature: f for f in drift.evaluate(project.ctx, window.parse("15m"), "iris", None)
             .features}  # fmt: skip
    assert found["sepal_length"].missing_share == pytest.approx(1 / 4)
    assert found["petal_width"].missing_share == pytest.approx(1 / 4)
    assert found["petal_length"].missing_share == pytest.approx(1 / 4)
    assert found["prediction"].current_rows == 6
    assert found["prediction"].unseen == {"7": 1}


def test_unseen_values_are_named_within_the_cap() -> None:
    spec = {"name": "colour", "dtype": "categorical", "categories": ["red"], "ref_counts": [5, 0],
            "ref_missing": 0, "n_unique": 1}  # fmt: skip
    profile = {"kind": "tabular", "features": [spec], "prediction": None, "outlier": None}
    values = [f"{i}{'c' * 500}" for i in range(100)]
    rows = [(i, 60.0, json.dumps([{"colour": v}]), None) for i, v in enumerate(values)]
    batch = drift_sketch.sketch(profile, rows)
    named = batch.unseen[60][1]["colour"]
    assert len(named) == drift_sketch.MAX_UNSEEN
    assert all(len(v) <= drift_sketch.MAX_VALUE_CHARS for v in named)
    slots = batch.buckets[60][1][1]
    assert dict(zip(slots.index.tolist(), slots.counts.tolist(), strict=True)) == {1: 100}


def test_psi_matches_its_formula_on_the_raw_values(project: Project) -> None:
    reference.ensure(project.ctx, "iris", 1)
    profile = drift_store.reference(project.conn, "iris", 1)
    assert profile is not None
    served = _shifted(_iris())
    _log(project, served, time.time() - 300)  # 150 rows a second apart, all in the past
    result = {f.feature: f for f in drift.evaluate(project.ctx, window.parse("15m"), "iris", None)
              .features}["petal_length"]  # fmt: skip
    spec = next(s for s in profile["features"] if s["name"] == "petal_length")
    points = np.asarray(spec["edges"])
    train = np.repeat(points, np.asarray(spec["ref_counts"])[1::2])  # counts on the values
    current = np.array([float(r["petal_length"]) for r in served])
    # The groups: slot boundaries where the training mass crosses each tenth.
    bounds = drift_tests.group_bounds(np.asarray(spec["ref_counts"]), drift_tests.PSI_GROUPS)
    slots_train = drift_sketch.bin_values(spec, train)
    slots_current = drift_sketch.bin_values(spec, current)
    group = np.searchsorted(bounds, np.arange(len(spec["ref_counts"])), side="right") - 1
    p = np.bincount(group[slots_train], minlength=len(bounds)) / len(train)
    q = np.bincount(group[slots_current], minlength=len(bounds)) / len(current)
    floor = lambda s: np.where(s == 0, 1e-4 if s[s > 0].min() > 1e-4 else s[s > 0].min() / 1e6, s)  # noqa: E731
    expected = float(np.sum((floor(p) - floor(q)) * np.log(floor(p) / floor(q))))
    assert result.psi == pytest.approx(expected, rel=1e-12)


def test_no_reference_is_a_note_not_an_error(project: Project) -> None:
    _log(project, _iris()[:5], time.time() - 60)
    conn: sqlite3.Connection = project.conn
    with conn:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("UPDATE model_versions SET dataset_version_id = 999")
    before = snapshot(project.path)
    found = drift.evaluate(project.ctx, window.parse("1h"), "iris", None)
    assert found.features == [] and "no training data for iris:1" in found.note
    after = snapshot(project.path)
    # Only the reason is kept (lineage never changes: it is not looked for again).
    assert after["counts"]["drift_references"] == before["counts"]["drift_references"] + 1
    for table in ("drift_minutes", "drift_hours", "request_anomalies", "request_log"):
        assert after["counts"][table] == before["counts"][table]
    assert after["integrity"] == "ok"
    again = drift.evaluate(project.ctx, window.parse("1h"), "iris", None)
    assert again.note == found.note


def _series(latency: np.ndarray, errors: np.ndarray, requests: float = 100.0) -> Series:
    n = len(latency)
    empty = np.zeros(0)
    return Series(start=np.arange(n) * 60.0, bin_seconds=60, seconds=np.full(n, 60.0),
                  requests=np.full(n, requests), rows=np.full(n, requests),
                  errors_4xx=errors, errors_5xx=np.zeros(n),
                  latency_ms={50: latency, 95: latency, 99: latency}, versions={},
                  classes={}, value_mean=empty, value_min=empty, value_max=empty)  # fmt: skip


def test_latency_and_error_spikes_against_their_own_history() -> None:
    rng = np.random.default_rng(0)
    latency = 2.0 + rng.normal(0, 0.05, 60)
    errors = rng.integers(0, 3, 60).astype(float)
    latency[45], errors[50] = 9.0, 30.0
    spikes = anomalies.service_spikes(_series(latency, errors))
    assert [s["start"] for s in spikes["latency"]] == [45 * 60.0]
    assert [s["start"] for s in spikes["errors"]] == [50 * 60.0]
    assert spikes["latency"][0]["z"] >= anomalies.Z_SPIKE
    quiet = anomalies.service_spikes(_series(np.full(60, 2.0), np.zeros(60)))
    assert quiet == {"latency": [], "errors": []}
    assert math.isclose(spikes["latency"][0]["value"], 9.0)


def _log_model(project: Project, model: str, records: list[Any], start: float,
               outputs: list[Any]) -> None:  # fmt: skip
    serving_store.add_requests(project.conn, [
        {"ts": start + i, "request_id": uuid.uuid4().hex, "method": "POST", "path": "/predict",
         "protocol": "native", "model": model, "version": 1, "status": 200,
         "latency_ms": 1.0, "n_rows": 1, "inputs": [record], "outputs": [outputs[i]]}
        for i, record in enumerate(records)
    ])  # fmt: skip


@pytest.mark.slow
def test_time_series_drift_of_the_recent_window(tmp_path: Path) -> None:
    path = tmp_path / "nile.lepton"
    with Project.create(path) as project:
        project.import_dataset(SAMPLE_DATA / "nile.csv", "nile", kind="timeseries",
                               time_column="year")  # fmt: skip
        project.train("nile", arch="rnn", epochs=1, window=8, model_name="nile")
        with open(SAMPLE_DATA / "nile.csv", newline="") as handle:
            volume = [float(r["volume"]) for r in csv.DictReader(handle)]
        windows = [{"volume": volume[i : i + 8]} for i in range(60)]
        flooded = [{"volume": [v * 1.6 for v in w["volume"]]} for w in windows]
        now = time.time()
        _log_model(project, "nile", windows, now - 7000, [{"value": 900.0}] * 60)
        _log_model(project, "nile", flooded, now - 600, [{"value": 1400.0}] * 60)
        recent = drift.evaluate(project.ctx, window.parse("15m", now), "nile", None)
        earlier = drift.evaluate(project.ctx, window.between(now - 7200, now - 3600), "nile",
                                 None)  # fmt: skip
    names = [f.feature for f in recent.features]
    assert names == ["volume (last)", "volume (window mean)", "prediction"]
    assert all(f.drifted for f in recent.features)
    assert recent.dataset_drift and recent.rows == 60
    assert not earlier.features[1].drifted  # the windows as trained: the mean is stable


@pytest.mark.slow
def test_image_drift_of_brightness_contrast_and_size(tmp_path: Path) -> None:
    import base64

    from PIL import Image, ImageOps

    path = tmp_path / "digits.lepton"
    with Project.create(path) as project:
        project.import_dataset(SAMPLE_DATA / "digits", "digits")
        project.train("digits", arch="cnn", epochs=1, batch_size=64, model_name="digits")
        pictures = sorted((SAMPLE_DATA / "digits").glob("*/*.png"))[:80]
        plain, dark = [], []
        for picture in pictures:
            data = picture.read_bytes()
            plain.append({"image": base64.b64encode(data).decode()})
            with Image.open(picture) as image:
                inverted = ImageOps.invert(image.convert("L")).resize((24, 24))
            out = tmp_path / "dark.png"
            inverted.save(out)
            dark.append({"image": base64.b64encode(out.read_bytes()).decode()})
        now = time.time()
        answers = [{"label": "1"}] * 80
        _log_model(project, "digits", plain, now - 7000, answers)
        _log_model(project, "digits", dark, now - 300, answers)
        found = drift.evaluate(project.ctx, window.parse("15m", now), "digits", None)
        recent = {f.feature: f for f in found.features}
        found = drift.evaluate(project.ctx, window.between(now - 7200, now - 3600), "digits", None)
        earlier = {f.feature: f for f in found.features}
    assert {"image brightness", "image contrast", "image width", "image height"} <= set(recent)
    assert recent["image brightness"].drifted and recent["image width"].drifted
    assert not earlier["image brightness"].drifted and not earlier["image width"].drifted
