"""Preparing datasets: every preparation is a new version fitted on the train split."""

from __future__ import annotations

import csv
import json
import math
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lepton_desktop.core.datasets.prep import PrepOptions, PrepPreview
from lepton_desktop.core.entities import DatasetVersion
from lepton_desktop.core.errors import CancelledError, InvalidOptionError
from lepton_desktop.core.project import Project
from tests.conftest import SAMPLE_DATA

SPLIT = (0.7, 0.15, 0.15)


def snapshot(project: Project) -> tuple[list[str], list[str], bool]:
    """Datasets, tables and integrity: what a refused preparation must leave unchanged."""
    tables = sorted(r[0] for r in project.conn.execute("SELECT name FROM sqlite_master"))
    return [v.ref for v in project.datasets()], tables, project.integrity_ok()


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows([["" if v is None else v for v in row] for row in rows])
    return path


def shop_rows(n: int = 60, seed: int = 1) -> list[list[Any]]:
    """x1 (float, some missing), x2 (int), color (categorical, some missing), note (text), y."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        x1 = None if i % 7 == 3 else round(float(rng.normal(5, 2)), 3)
        color = None if i % 11 == 5 else ["red", "green", "blue"][i % 3]
        rows.append([x1, int(rng.integers(0, 100)), color, f"note {i}", "abc"[i % 3]])
    return rows


@pytest.fixture
def shop(tmp_project: Path, tmp_path: Path) -> tuple[Project, DatasetVersion]:
    rows = shop_rows()
    rows += [rows[3], rows[10], rows[10]]  # duplicates, one with a missing cell
    path = write_csv(tmp_path / "shop.csv", ["x1", "x2", "color", "note", "y"], rows)
    project = Project.open(tmp_project)
    version = project.import_dataset(path, "shop", target="y")
    yield project, version
    project.close()


def table(project: Project, version: DatasetVersion) -> dict[str, list[Any]]:
    rows = project.rows(version, 0, version.n_rows)
    names = [c.name for c in version.columns] + ["_split"]
    return {name: [r[i] for r in rows] for i, name in enumerate(names)}


def number(values: list[Any]) -> np.ndarray:
    return np.array([math.nan if v is None else v for v in values], dtype=float)


class CancelOn:
    """Cancels at the first update whose message starts with ``prefix``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def update(self, done: int, total: int | None, message: str = "") -> None:
        if message.startswith(self.prefix):
            raise CancelledError()


# -- versions and operations -----------------------------------------------------------


def test_a_preparation_is_a_new_child_version(shop: tuple[Project, DatasetVersion]) -> None:
    project, source = shop
    before = table(project, source)
    prepared = project.prep("shop", PrepOptions(dedupe=True, fill="mean", split=SPLIT))
    assert prepared.ref == "shop:2"
    assert prepared.parent_id == source.id
    assert prepared.target == "y"
    assert [op["op"] for op in prepared.operations] == ["dedupe", "split", "fill"]
    assert table(project, project.dataset("shop:1")) == before
    assert project.integrity_ok()
    json.dumps(prepared.pipeline, allow_nan=False)  # plain JSON, never NaN or pickles


def test_dedupe_removes_exact_duplicates_missing_cells_included(
    shop: tuple[Project, DatasetVersion],
) -> None:
    project, source = shop
    prepared = project.prep("shop", PrepOptions(dedupe=True))
    assert source.n_rows == 63
    assert prepared.n_rows == 60
    assert prepared.operations == [{"op": "dedupe", "removed": 3}]
    assert table(project, prepared)["note"] == [f"note {i}" for i in range(60)]


def test_dedupe_runs_before_fill(tmp_project: Path, tmp_path: Path) -> None:
    rows = [[1.0, "a"], [1.0, "a"], [1.0, "a"], [10.0, "b"], [None, "c"]]
    path = write_csv(tmp_path / "d.csv", ["x", "y"], rows)
    with Project.open(tmp_project) as project:
        project.import_dataset(path, "d")
        prepared = project.prep("d", PrepOptions(dedupe=True, fill="mean"))
        assert table(project, prepared)["x"] == [1.0, 10.0, 5.5]  # not 3.25


@pytest.mark.parametrize(("method", "x1_fill"), [
    ("mean", np.nanmean), ("median", np.nanmedian), ("zero", lambda _: 0.0),
])
def test_fill_numeric_and_categorical(
    shop: tuple[Project, DatasetVersion], method: str, x1_fill: Any
) -> None:
    project, source = shop
    raw = table(project, source)
    prepared = project.prep("shop", PrepOptions(fill=method))
    out = table(project, prepared)
    x1 = number(raw["x1"])
    missing = np.isnan(x1)
    assert np.allclose(number(out["x1"])[missing], x1_fill(x1))
    assert np.allclose(number(out["x1"])[~missing], x1[~missing])
    # Colours (categorical) always take their most frequent value.
    colors = [c for c in raw["color"] if c is not None]
    mode = max(sorted(set(colors)), key=colors.count)
    assert [c for c, r in zip(out["color"], raw["color"], strict=True) if r is None] == [mode] * 5
    fill = next(op for op in prepared.operations if op["op"] == "fill")
    assert fill["columns"] == {"x1": 12, "color": 5}  # duplicates included
    assert prepared.column("x1").stats["missing"] == 0


def test_fill_mode_on_numbers(tmp_project: Path, tmp_path: Path) -> None:
    rows = [[2, 0], [3, 1], [3, 0], [None, 1], [2, 1], [3, 0]]
    path = write_csv(tmp_path / "m.csv", ["x", "y"], rows)
    with Project.open(tmp_project) as project:
        project.import_dataset(path, "m")
        assert table(project, project.prep("m", PrepOptions(fill="mode")))["x"][3] == 3


def test_fill_applies_where_it_can_on_text_only_tables(tmp_project: Path, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", ["word"], [["a"], ["b"], [None], ["b"]])
    with Project.open(tmp_project) as project:
        project.import_dataset(path, "t")
        prepared = project.prep("t", PrepOptions(fill="mean"))
        assert table(project, prepared)["word"] == ["a", "b", "b", "b"]


def test_fill_drop_removes_rows_with_any_missing_cell(
    shop: tuple[Project, DatasetVersion],
) -> None:
    project, source = shop
    prepared = project.prep("shop", PrepOptions(fill="drop"))
    raw = table(project, source)
    complete = sum(1 for x, c in zip(raw["x1"], raw["color"], strict=True)
                   if x is not None and c is not None)
    assert prepared.n_rows == complete
    assert [op["op"] for op in prepared.operations] == ["drop_missing"]
    assert prepared.operations[0] == {"op": "drop_missing", "removed": 63 - complete,
                                      "columns": "all"}
    assert all(c.stats["missing"] == 0 for c in prepared.columns)


def test_rows_without_a_target_are_dropped_not_filled(tmp_project: Path, tmp_path: Path) -> None:
    rows = [[1, 10.5], [2, None], [3, 30.5], [None, 4]]
    path = write_csv(tmp_path / "r.csv", ["x", "price"], rows)
    with Project.open(tmp_project) as project:
        project.import_dataset(path, "r", target="price")
        out = table(project, project.prep("r", PrepOptions(fill="mean")))
        assert out["price"] == [10.5, 30.5, 4.0]
        assert out["x"] == [1, 3, 2]  # the mean of 1, 3 (the dropped row's 2 is not used)


# -- fitted on the train split only -----------------------------------------------------


def test_fill_and_scale_are_fitted_on_train_rows_only(
    shop: tuple[Project, DatasetVersion],
) -> None:
    project, source = shop
    options = PrepOptions(fill="mean", scale="standard", split=SPLIT, seed=3)
    prepared = project.prep("shop", options)
    raw, out = table(project, source), table(project, prepared)
    train = np.array(out["_split"]) == 0
    x1, x2 = number(raw["x1"]), number(raw["x2"])
    fill_value = np.nanmean(x1[train])
    filled = np.where(np.isnan(x1), fill_value, x1)
    expected = (filled - filled[train].mean()) / filled[train].std()
    assert np.allclose(number(out["x1"]), expected)
    assert np.allclose(number(out["x2"])[train].mean(), 0) and np.isclose(
        number(out["x2"])[train].std(), 1)
    assert not np.isclose(number(out["x2"]).mean(), 0)  # val/test rows were not fitted
    steps = {s["step"]: s for s in prepared.pipeline}
    assert steps["fill"]["values"]["x1"] == pytest.approx(fill_value)
    assert steps["scale"]["columns"]["x2"] == {"mean": pytest.approx(x2[train].mean()),
                                              "std": pytest.approx(x2[train].std())}
    assert all(op.get("fitted_on", "train") == "train" for op in prepared.operations)


def test_minmax_maps_train_rows_to_unit_range(shop: tuple[Project, DatasetVersion]) -> None:
    project, _ = shop
    prepared = project.prep("shop", PrepOptions(scale="minmax", split=SPLIT))
    out = table(project, prepared)
    train = np.array(out["_split"]) == 0
    x2 = number(out["x2"])[train]
    assert x2.min() == 0 and x2.max() == 1
    assert out["y"][:3] == ["a", "b", "c"]  # the target is never scaled


def test_the_target_and_the_time_column_are_never_scaled(
    tmp_project: Path, tmp_path: Path
) -> None:
    rows = [[1900 + i, float(i % 5), float(i * 2)] for i in range(20)]
    path = write_csv(tmp_path / "ts.csv", ["year", "rain", "flow"], rows)
    with Project.open(tmp_project) as project:
        project.import_dataset(path, "ts", kind="timeseries", target="flow")
        prepared = project.prep("ts", PrepOptions(scale="standard", split=SPLIT))
        out = table(project, prepared)
        assert out["year"] == list(range(1900, 1920))
        assert out["flow"] == [float(i * 2) for i in range(20)]
        assert out["rain"] != [float(i % 5) for i in range(20)]
        # Time series split in time order: first 70% train, next 15% val, last 15% test.
        assert out["_split"] == [0] * 14 + [1] * 3 + [2] * 3
        assert prepared.operations[0]["strategy"] == "time"


def test_onehot_replaces_categorical_features_with_train_categories(
    tmp_project: Path, tmp_path: Path
) -> None:
    rows = [[i, ["red", "blue"][i % 2], "yes" if i % 3 else "no"] for i in range(20)]
    rows += [[20, "green", "no"]]  # seen only in a val/test row, or nowhere in train
    path = write_csv(tmp_path / "c.csv", ["n", "color", "label"], rows)
    with Project.open(tmp_project) as project:
        project.import_dataset(path, "c", target="label")
        prepared = project.prep("c", PrepOptions(onehot=True, split=(0.5, 0.25, 0.25)))
        out = table(project, prepared)
        names = [c.name for c in prepared.columns]
        train_colors = {rows[i][1] for i, s in enumerate(out["_split"]) if s == 0}
        assert names == ["n", *[f"color={c}" for c in sorted(train_colors)], "label"]
        assert prepared.column("color=blue").stats["onehot"] == "color"
        assert out["label"][:2] == ["no", "yes"]  # the target is not encoded
        for i, row in enumerate(rows):
            for color in train_colors:
                assert out[f"color={color}"][i] == (row[1] == color)
        # A later scaling leaves the 0/1 columns alone.
        rescaled = project.prep("c", PrepOptions(scale="standard"))
        assert table(project, rescaled)["color=blue"] == out["color=blue"]


# -- splits ----------------------------------------------------------------------------


def test_classification_split_is_stratified_and_seeded(tmp_project: Path) -> None:
    with Project.open(tmp_project) as project:
        project.import_dataset(SAMPLE_DATA / "iris.csv", "iris", target="species")
        first = project.prep("iris", PrepOptions(split=SPLIT, seed=7))
        again = project.prep("iris:1", PrepOptions(split=SPLIT, seed=7))
        other = project.prep("iris:1", PrepOptions(split=SPLIT, seed=8))
        out = table(project, first)
        assert first.splits == {"train": 105, "val": 24, "test": 21}
        for species in ("setosa", "versicolor", "virginica"):
            per = [s for s, y in zip(out["_split"], out["species"], strict=True) if y == species]
            assert (per.count(0), per.count(1), per.count(2)) == (35, 8, 7)
        assert table(project, again)["_split"] == out["_split"]
        assert table(project, other)["_split"] != out["_split"]
        assert first.operations[0]["strategy"] == "stratified"


def test_numeric_targets_few_integers_stratify_others_do_not(tmp_project: Path) -> None:
    with Project.open(tmp_project) as project:
        project.import_dataset(SAMPLE_DATA / "diabetes.csv", "diab", target="progression")
        assert project.prep("diab", PrepOptions(split=SPLIT)).operations[0]["strategy"] == "random"
        project.import_dataset(SAMPLE_DATA / "diabetes.csv", "sex", target="sex")
        assert project.prep("sex", PrepOptions(split=SPLIT)).operations[0]["strategy"] == \
            "stratified"


def test_an_existing_split_is_kept_unless_a_new_one_is_asked(
    shop: tuple[Project, DatasetVersion],
) -> None:
    project, _ = shop
    split = table(project, project.prep("shop", PrepOptions(split=SPLIT, seed=1)))["_split"]
    kept = project.prep("shop", PrepOptions(fill="mean"))
    assert table(project, kept)["_split"] == split
    assert next(s for s in kept.pipeline if s["step"] == "fill")  # fitted on its train rows
    assert kept.operations[-1]["fitted_on"] == "train"
    renewed = project.prep("shop", PrepOptions(split=SPLIT, seed=2))
    assert table(project, renewed)["_split"] != split


def test_images_dedupe_identical_bytes_and_split(tmp_project: Path, tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    for cls in ("0", "1"):
        (folder / cls).mkdir(parents=True)
        for f in sorted((SAMPLE_DATA / "digits" / cls).iterdir())[:10]:
            (folder / cls / f.name).write_bytes(f.read_bytes())
    dup = next((folder / "1").iterdir())
    (folder / "1" / "copy.png").write_bytes(dup.read_bytes())
    with Project.open(tmp_project) as project:
        source = project.import_dataset(folder, "imgs")
        prepared = project.prep("imgs", PrepOptions(dedupe=True, split=(0.6, 0.2, 0.2)))
        assert (source.n_rows, prepared.n_rows) == (21, 20)
        assert prepared.splits == {"train": 12, "val": 4, "test": 4}
        assert prepared.kind == "images" and prepared.target == "label"
        paths = table(project, prepared)["path"]
        assert "1/copy.png" not in paths
        for row, path in enumerate(paths):
            assert project.image(prepared, row) == (folder / path).read_bytes()


# -- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(("options", "message"), [
    (PrepOptions(), "nothing to do"),
    (PrepOptions(split=(0.7, 0.2, 0.2)), "summing to 1"),
    (PrepOptions(split=(0.0, 0.5, 0.5)), "train > 0"),
    (PrepOptions(split=(0.5, 0.5)), "three fractions"),  # type: ignore[arg-type]
    (PrepOptions(fill="average"), "unknown fill 'average'"),
    (PrepOptions(scale="robust"), "unknown scale 'robust'"),
    (PrepOptions(dedupe=True, seed="1"), "seed must be an integer"),  # type: ignore[arg-type]
    (PrepOptions(split=("0.5", "0.25", "0.25")), "three fractions"),  # type: ignore[arg-type]
    (PrepOptions(dedupe="yes"), "dedupe must be true or false"),  # type: ignore[arg-type]
    (PrepOptions(fill=""), "unknown fill ''"),
])
def test_impossible_options_are_refused_before_writing(
    shop: tuple[Project, DatasetVersion], options: PrepOptions, message: str
) -> None:
    project, source = shop
    before = snapshot(project)
    with pytest.raises(InvalidOptionError, match=message):
        project.prep("shop", options)
    with pytest.raises(InvalidOptionError, match=message):
        project.prep_preview(source, options)
    assert snapshot(project) == before


def test_scale_and_onehot_need_columns_to_work_on(tmp_project: Path, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "w.csv", ["word", "n"], [["a", 1], ["b", 2], ["c", 3]])
    with Project.open(tmp_project) as project:
        project.import_dataset(path, "w", target="n")
        before = snapshot(project)
        with pytest.raises(InvalidOptionError, match="no numeric feature column to scale"):
            project.prep("w", PrepOptions(scale="standard"))
        with pytest.raises(InvalidOptionError, match="no categorical feature column"):
            project.prep("w", PrepOptions(onehot=True))
        assert snapshot(project) == before


@pytest.mark.parametrize(("options", "named"), [
    (PrepOptions(fill="mean"), "not fill"),
    (PrepOptions(scale="standard", split=SPLIT), "not scale"),
    (PrepOptions(dedupe=True, onehot=True), "not one-hot"),
])
def test_images_take_only_dedupe_and_split(
    tmp_project: Path, options: PrepOptions, named: str
) -> None:
    with Project.open(tmp_project) as project:
        project.import_dataset(SAMPLE_DATA / "digits", "digits")
        before = snapshot(project)
        with pytest.raises(InvalidOptionError, match=f"digits:1 is an image dataset.*{named}"):
            project.prep("digits", options)
        assert snapshot(project) == before


def test_a_preparation_that_leaves_no_rows_is_refused(tmp_project: Path, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "e.csv", ["x", "y"], [[None, 1], [2, None]])
    with Project.open(tmp_project) as project:
        project.import_dataset(path, "e")
        before = snapshot(project)
        with pytest.raises(InvalidOptionError, match="no rows would be left"):
            project.prep("e", PrepOptions(fill="drop"))
        assert snapshot(project) == before


@pytest.mark.parametrize("phase", ["reading", "writing"])
def test_cancel_leaves_nothing(shop: tuple[Project, DatasetVersion], phase: str) -> None:
    project, _ = shop
    before = snapshot(project)
    with pytest.raises(CancelledError):
        project.prep("shop", PrepOptions(fill="mean", split=SPLIT), reporter=CancelOn(phase))
    assert snapshot(project) == before


# -- preview and options --------------------------------------------------------------


def test_preview_counts_without_writing(shop: tuple[Project, DatasetVersion]) -> None:
    project, source = shop
    before = snapshot(project)
    assert project.prep_preview(source, PrepOptions(dedupe=True, fill="mean")) == PrepPreview(
        rows_before=63, rows_after=60, missing_before=17, missing_after=0)
    assert project.prep_preview(source, PrepOptions(fill="drop")).rows_after == 47
    assert project.prep_preview(source, PrepOptions(split=SPLIT)).missing_after == 17
    assert snapshot(project) == before


def test_options_round_trip_through_json() -> None:
    options = PrepOptions(dedupe=True, fill="median", scale="minmax", onehot=True, split=SPLIT,
                          seed=4)
    assert PrepOptions.from_dict(json.loads(json.dumps(options.to_dict()))) == options
    assert PrepOptions(scale="none").scale is None
    with pytest.raises(InvalidOptionError, match="unknown preparation options: colour"):
        PrepOptions.from_dict({"colour": "blue"})


def test_command_line_prep(tmp_project: Path, cli_env: dict[str, str], python: str) -> None:
    with Project.open(tmp_project) as project:
        project.import_dataset(SAMPLE_DATA / "iris.csv", "iris", target="species")
    argv = [python, "-m", "lepton_desktop", "prep", str(tmp_project), "iris", "--dedupe",
            "--fill", "mean", "--scale", "standard", "--split", "0.7,0.15,0.15", "--json"]
    done = subprocess.run(argv, env=cli_env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["splits"] == {"train": 104, "val": 24, "test": 21}
    refused = subprocess.run([*argv[:5], "iris", "--onehot"], env=cli_env, capture_output=True,
                             text=True, check=False)
    assert refused.returncode == 2
    expected = "error: iris:2: no categorical feature column to one-hot encode"
    assert refused.stderr.strip() == expected
