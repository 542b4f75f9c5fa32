"""Bad data is caught, not stored silently (issue 10, defect 7).

Non-finite numbers become missing (and the import says how many), a one-class or
all-unique target is refused before training, a split that cannot be stratified is
split at random with a warning, and repeated timestamps are reported at import and
refused by training.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from lepton_desktop.core.datasets.notes import version_warnings
from lepton_desktop.core.datasets.prep import PrepOptions
from lepton_desktop.core.datasets.splits import assign_split
from lepton_desktop.core.errors import InvalidOptionError, LeptonError
from lepton_desktop.core.preprocessing import tabular as steps
from lepton_desktop.core.project import Project
from lepton_desktop.core.training.config import TrainConfig
from tests.helpers import snapshot, write_csv

INFINITE = ["inf", "-inf", "Infinity", "-Infinity", "1e309", "-1e400", "+inf", "INF"]


@pytest.fixture
def project(tmp_project: Path):
    with Project.open(tmp_project) as p:
        yield p


def _column_values(project: Project, ref: str, column: str) -> list[object]:
    version = project.dataset(ref)
    index = [c.name for c in version.columns].index(column)
    return [row[index] for row in project.rows(version, 0, version.n_rows)]


def test_non_finite_numbers_are_stored_as_missing_and_counted(
    project: Project, tmp_path: Path
) -> None:
    rows = [[float(i), token, i % 2] for i, token in enumerate(INFINITE)] + [[8.0, 2.5, 0]]
    csv = write_csv(tmp_path / "inf.csv", ["a", "b", "y"], rows)
    version = project.import_dataset(csv, "inf", target="y")
    assert _column_values(project, "inf", "b") == [None] * len(INFINITE) + [2.5]
    stats = version.column("b").stats
    assert stats["nonfinite"] == len(INFINITE) and stats["missing"] == len(INFINITE)
    assert (stats["mean"], stats["min"], stats["max"]) == (2.5, 2.5, 2.5)
    assert "nonfinite" not in version.column("a").stats
    assert version.operations[0]["nonfinite"] == {"b": len(INFINITE)}
    (warning,) = version_warnings(version)
    assert warning.startswith("8 value(s) that are not finite numbers")
    assert warning.endswith("treated as missing: b (8)")


def test_fill_mean_after_infinities_fills_with_the_finite_mean(
    project: Project, tmp_path: Path
) -> None:
    rows = [[1.0, 0], ["inf", 1], [3.0, 0], ["", 1], ["-inf", 0], [5.0, 1]]
    project.import_dataset(write_csv(tmp_path / "f.csv", ["x", "y"], rows), "f", target="y")
    prepared = project.prep("f", PrepOptions(fill="mean"))
    assert _column_values(project, prepared.ref, "x") == [1.0, 3.0, 3.0, 3.0, 3.0, 5.0]
    assert prepared.pipeline[1]["values"] == {"x": 3.0}


def test_the_one_preprocessing_treats_infinities_as_missing() -> None:
    values = np.array([1.0, np.inf, np.nan, -np.inf, 3.0])
    assert steps.missing_mask(values).tolist() == [False, True, True, True, False]
    columns = {"x": values}
    everything = np.ones(5, dtype=bool)
    fill = steps.fit_fill(columns, ["x"], "mean", everything)
    scale = steps.fit_scale(columns, ["x"], "minmax", everything)
    assert fill["values"] == {"x": 2.0}
    assert scale["columns"] == {"x": {"min": 1.0, "max": 3.0}}
    filled = steps.apply_steps([fill, scale], columns)["x"]
    assert filled.tolist() == [0.0, 0.5, 0.5, 0.5, 1.0]


def test_a_one_class_target_is_refused_before_anything_is_written(
    project: Project, tmp_path: Path
) -> None:
    csv = write_csv(tmp_path / "one.csv", ["x", "y"], [[i, "yes"] for i in range(10)])
    project.import_dataset(csv, "one", target="y")
    before = snapshot(project.path)
    with pytest.raises(InvalidOptionError, match="target 'y' of one:1 holds the same value"):
        project.runs.queue("one", TrainConfig(arch="mlp"))
    assert snapshot(project.path) == before


def test_an_all_unique_label_target_is_refused_and_its_split_warns(
    project: Project, tmp_path: Path
) -> None:
    rows = [[i, f"patient-{i}"] for i in range(60)]
    project.import_dataset(write_csv(tmp_path / "u.csv", ["x", "who"], rows), "u", target="who")
    prepared = project.prep("u", PrepOptions(split=(0.7, 0.15, 0.15)))
    # Every class was too small to divide: pooled and split at random, not 60/0/0.
    assert prepared.splits == {"train": 42, "val": 9, "test": 9}
    assert prepared.operations[0]["strategy"] == "random"
    (warning,) = version_warnings(prepared)
    assert "target 'who' holds a different value in every row (60 of 60)" in warning
    before = snapshot(project.path)
    with pytest.raises(InvalidOptionError, match=r"different value in every row \(60 of 60\)"):
        project.runs.queue("u", TrainConfig(arch="mlp"))
    assert snapshot(project.path) == before


def test_small_classes_are_pooled_and_large_ones_still_stratified() -> None:
    groups = np.array([0] * 50 + [1] * 50 + list(range(2, 12)))  # ten singleton classes
    split = assign_split(len(groups), (0.7, 0.15, 0.15), seed=0, groups=groups)
    for big in (0, 1):
        assert np.bincount(split[groups == big], minlength=3).tolist() == [35, 8, 7]
    assert np.bincount(split[groups >= 2], minlength=3).tolist() == [7, 2, 1]


def test_repeated_timestamps_warn_at_import_and_training_refuses_them(
    project: Project, tmp_path: Path
) -> None:
    days = [f"2024-01-{d:02d}" for d in range(1, 31)]
    days[10] = days[9]  # two readings on 2024-01-10
    rows = [[day, math.sin(i)] for i, day in enumerate(days)]
    csv = write_csv(tmp_path / "s.csv", ["day", "v"], rows)
    version = project.import_dataset(csv, "s", kind="timeseries")
    assert version.operations[0]["repeated_times"] == {
        "column": "day", "count": 1, "example": "2024-01-10"
    }
    (warning,) = version_warnings(version)
    assert warning.startswith("time column 'day' repeats 1 timestamp(s) (the first: 2024-01-10)")
    with pytest.raises(LeptonError, match="time column 'day' repeats 1 timestamp"):
        project.train("s", arch="rnn", epochs=1, window=3)
