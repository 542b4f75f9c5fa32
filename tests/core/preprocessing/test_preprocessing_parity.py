"""One preprocessing: random raw data through training's path and serving's path.

Training turns a dataset version into tensors (``training.data.load``: the prep
version's stored values, then training's own encoding); serving turns the *raw* values
a client sends into tensors (``Predictor.encode``: the whole stored pipeline, through
the compiled fast path when it applies, else the full one). Hypothesis generates raw
tables (numbers, huge and tiny, missing cells, categories), images (modes, sizes) and
series; every row must give an identical tensor both ways, bit for bit.
"""

from __future__ import annotations

import base64
import io
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from lepton_desktop.core.datasets.prep import PrepOptions
from lepton_desktop.core.inference.predictor import ModelParts, Predictor
from lepton_desktop.core.project import Project
from lepton_desktop.core.training import data as training_data
from lepton_desktop.core.training.config import TrainConfig
from lepton_desktop.core.training.loop import serialize
from lepton_desktop.core.training.models import build, model_spec

pytestmark = pytest.mark.slow
SPLITS = ("train", "val", "test")
SETTINGS = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,  # the same examples every run: CI never meets a new one by luck
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _predictor(data: training_data.TrainData, config: TrainConfig) -> Predictor:
    spec = model_spec(config, data.input_shape, data.n_outputs)
    params = {
        "spec": spec,
        "classes": data.classes,
        "target_mean": data.target_mean,
        "target_std": data.target_std,
    }
    parts = ModelParts(
        name="m", version=1, arch=config.arch, task=data.task, params=params,
        pipeline=data.pipeline, signature={}, weights=serialize(build(spec).state_dict()),
    )  # fmt: skip
    return Predictor(parts)


def _splits(project: Project, ref: str) -> np.ndarray:
    version = project.dataset(ref)
    return np.array([row[-1] for row in project.rows(version, 0, version.n_rows)])


def _fresh(template: Path, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.lepton"
    path.unlink(missing_ok=True)
    shutil.copy(template, path)
    return path


# -- tables ------------------------------------------------------------------------------

_number = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False, width=64),
    st.integers(-1000, 1000).map(float),
    st.sampled_from([0.0, 1e-300, -2.5e15, 3e37]),  # float32 reaches 3.4e38
)
_category = st.sampled_from(["red", "green", "blue", "x y", "ü"])


@st.composite
def tables(draw: Any) -> dict[str, Any]:
    rows = draw(st.integers(20, 40))
    n_numeric = draw(st.integers(1, 3))
    n_categorical = draw(st.integers(0, 2))
    columns: dict[str, list[Any]] = {}
    for i in range(n_numeric):
        missing = draw(st.sampled_from([0.0, 0.2]))
        columns[f"n{i}"] = [
            None if draw(st.floats(0, 1)) < missing else draw(_number) for _ in range(rows)
        ]
        if all(v is None for v in columns[f"n{i}"]):
            columns[f"n{i}"][0] = 1.0
    for i in range(n_categorical):
        columns[f"c{i}"] = [draw(st.one_of(st.none(), _category)) for _ in range(rows)]
        columns[f"c{i}"][0] = "red"  # never an all-empty column
    columns["y"] = [draw(st.floats(-100, 100, allow_nan=False)) for _ in range(rows)]
    columns["y"][:2] = [-1.0, 1.0]  # a constant target is refused: nothing to learn
    options = PrepOptions(
        fill=draw(st.sampled_from([None, "mean", "median", "mode", "zero"])),
        scale=draw(st.sampled_from(["none", "standard", "minmax"])),
        onehot=n_categorical > 0 and draw(st.booleans()),
        split=(0.6, 0.2, 0.2),
        seed=draw(st.integers(0, 3)),
    )
    return {"columns": columns, "rows": rows, "options": options}


def _write_csv(path: Path, columns: dict[str, list[Any]], rows: int) -> None:
    def cell(value: Any) -> str:
        if value is None:
            return ""
        return repr(value) if isinstance(value, float) else f'"{value}"'

    lines = [",".join(columns)]
    lines += [",".join(cell(columns[c][r]) for c in columns) for r in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@given(table=tables())
@SETTINGS
def test_table_rows_encode_the_same_in_training_and_serving(
    table: dict[str, Any], _template_project: Path, tmp_path: Path
) -> None:
    source = tmp_path / "raw.csv"
    _write_csv(source, table["columns"], table["rows"])
    config = TrainConfig(arch="mlp", task="regression")
    with Project.open(_fresh(_template_project, tmp_path, "table")) as project:
        project.import_dataset(source, "t", target="y")
        prepared = project.prep("t", table["options"])
        data = training_data.load(project.conn, prepared, config)
        splits = _splits(project, prepared.ref)
    predictor = _predictor(data, config)
    features = [c for c in table["columns"] if c != "y"]
    records = [
        {c: table["columns"][c][r] for c in features} for r in range(table["rows"])
    ]
    for code, name in enumerate(SPLITS):
        chosen = [records[r] for r in np.flatnonzero(splits == code)]
        served = predictor.encode(chosen)
        assert served.dtype == data.x[name].dtype == np.float32
        np.testing.assert_array_equal(served, data.x[name])
        one_by_one = np.concatenate([predictor.encode([r]) for r in chosen])
        np.testing.assert_array_equal(one_by_one, data.x[name])  # fast path or not


# -- images ------------------------------------------------------------------------------


@st.composite
def image_sets(draw: Any) -> dict[str, Any]:
    mode = draw(st.sampled_from(["L", "RGB", "mixed"]))
    sizes = draw(st.lists(st.sampled_from([(8, 8), (10, 6), (7, 9)]), min_size=1, max_size=2))
    pictures = []
    for index in range(draw(st.integers(12, 18))):
        width, height = draw(st.sampled_from(sizes))
        picture_mode = mode if mode != "mixed" else ("L", "RGB", "RGBA")[index % 3]
        seed = draw(st.integers(0, 2**31 - 1))
        channels = {"L": 1, "RGB": 3, "RGBA": 4}[picture_mode]
        pixels = np.random.default_rng(seed).integers(0, 256, (height, width, channels))
        array = pixels.astype(np.uint8).squeeze(-1) if channels == 1 else pixels.astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(array, picture_mode).save(buffer, format="PNG")
        pictures.append((f"class{index % 2}", f"{index:03d}.png", buffer.getvalue()))
    return {"pictures": pictures}


@given(image_set=image_sets())
@SETTINGS
def test_images_encode_the_same_in_training_and_serving(
    image_set: dict[str, Any], _template_project: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "pictures"
    shutil.rmtree(folder, ignore_errors=True)
    for label, name, data in image_set["pictures"]:
        (folder / label).mkdir(parents=True, exist_ok=True)
        (folder / label / name).write_bytes(data)
    config = TrainConfig(arch="cnn")
    with Project.open(_fresh(_template_project, tmp_path, "images")) as project:
        project.import_dataset(folder, "pics", kind="images")
        prepared = project.prep("pics", PrepOptions(split=(0.6, 0.2, 0.2), seed=1))
        data = training_data.load(project.conn, prepared, config)
        splits = _splits(project, prepared.ref)
    predictor = _predictor(data, config)
    # Rows are stored by class, then path: the order the folder is listed in.
    ordered = sorted(image_set["pictures"], key=lambda p: (p[0], p[1]))
    records = [{"image": base64.b64encode(data).decode()} for _, _, data in ordered]
    for code, name in enumerate(SPLITS):
        chosen = [records[r] for r in np.flatnonzero(splits == code)]
        np.testing.assert_array_equal(predictor.encode(chosen), data.x[name])


# -- time series -------------------------------------------------------------------------


@given(
    values=st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=40, max_size=80),
    window=st.integers(2, 8),
    horizon=st.integers(1, 3),
)
@SETTINGS
def test_series_windows_encode_the_same_in_training_and_serving(
    values: list[float], window: int, horizon: int, _template_project: Path, tmp_path: Path
) -> None:
    source = tmp_path / "series.csv"
    lines = ["t,v"] + [f"{i},{v!r}" for i, v in enumerate(values)]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = TrainConfig(arch="rnn", window=window, horizon=horizon)
    with Project.open(_fresh(_template_project, tmp_path, "series")) as project:
        version = project.import_dataset(
            source, "s", kind="timeseries", target="v", time_column="t"
        )
        data = training_data.load(project.conn, version, config)
    predictor = _predictor(data, config)
    served = np.concatenate([data.x[name] for name in SPLITS])
    ends = np.arange(window + horizon - 1, len(values))
    # The window of target ``end`` is the ``window`` values ending ``horizon`` before it.
    records = [{"v": values[: end - horizon + 1]} for end in ends]
    encoded = predictor.encode(records)
    assert not any(math.isnan(v) for v in values)
    np.testing.assert_array_equal(encoded, served)
