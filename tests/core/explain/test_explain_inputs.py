"""Every input an explanation takes, mapped back to what the user knows, and refusals."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.explain_factory import explain_project  # noqa: F401 (a fixture)
from tests.helpers import snapshot


@pytest.fixture
def path(explain_project: Path, tmp_path: Path) -> Path:  # noqa: F811
    target = tmp_path / "p.lepton"
    shutil.copyfile(explain_project, target)
    return target


def test_a_one_hot_column_is_explained_as_its_source_column(path: Path) -> None:
    from lepton_desktop.core.project import Project

    with Project.open(path) as project:
        record = {"price": 7.5, "colour": "red"}
        explanation = project.explain("shop", record=record)
    columns = {f["column"]: f for f in explanation.features}
    assert set(columns) == {"price", "colour"}  # not colour=red, colour=blue, ...
    assert columns["colour"]["value"] == "red" and columns["price"]["value"] == 7.5
    assert explanation.prediction["label"] == "yes"
    # Red is why it sells at that price: the colour carries the positive evidence.
    assert columns["colour"]["attribution"] > abs(columns["price"]["attribution"])
    assert explanation.baseline == "the training mean of every column"


def test_a_test_row_shows_its_raw_values(path: Path) -> None:
    from lepton_desktop.core.explain import test_rows
    from lepton_desktop.core.project import Project

    with Project.open(path) as project:
        rows = test_rows(project.ctx, "shop")
        explanation = project.explain("shop", row=3)
    record = rows.record(3)
    assert {f["column"]: f["value"] for f in explanation.features} == record
    assert rows.truth[3] in ("yes", "no")


def test_an_image_file_gets_a_heat_map_by_each_method(path: Path) -> None:
    from lepton_desktop.core.project import Project
    from tests.conftest import SAMPLE_DATA

    image = SAMPLE_DATA / "digits" / "3" / "0013.png"
    with Project.open(path) as project:
        by_method = {m: project.explain("digits", image=image, method=m)
                     for m in ("ig", "gradcam", "occlusion")}  # fmt: skip
    for method, explanation in by_method.items():
        assert explanation.heatmap.shape == (8, 8), method
        assert explanation.picture.shape == (8, 8, 3)
        assert np.isfinite(explanation.heatmap).all()
    assert by_method["gradcam"].heatmap.min() >= 0  # ReLU'd class activation map
    assert "blurred" in by_method["ig"].baseline
    assert by_method["gradcam"].baseline_output is None


def test_a_window_gets_one_attribution_per_step(path: Path) -> None:
    from lepton_desktop.core.project import Project

    with Project.open(path) as project:
        explanation = project.explain("nile", row=0)
    assert len(explanation.steps) == len(explanation.values) == 8
    assert explanation.steps[-1] == 0.0  # the baseline is the last value itself
    assert "last value" in explanation.baseline


def test_a_logged_request_is_explained_from_its_captured_inputs(path: Path) -> None:
    from lepton_desktop.core.project import Project
    from lepton_desktop.core.store import serving as serving_store

    record = {"price": 2.0, "colour": "blue"}
    with Project.open(path) as project:
        serving_store.add_requests(project.conn, [_logged("with-inputs", inputs=[record])])
        logged = project.explain("shop", request_id="with-inputs")
        direct = project.explain("shop", record=record)
    assert logged.features == direct.features


def _logged(request_id: str, **fields: object) -> dict[str, object]:
    import time

    return {"deployment_id": None, "ts": time.time(), "request_id": request_id,
            "method": "POST", "path": "/predict", "protocol": "native", "status": 200,
            "latency_ms": 1.0, "n_rows": 1, "model": "shop", "version": 1} | fields  # fmt: skip


BAD = [
    ({"model": "shop", "record": {"price": 3.0}}, "missing feature 'colour'"),
    ({"model": "shop", "record": {"price": 3.0, "colour": "red"}, "method": "shapley"},
     "unknown explanation method 'shapley'"),
    ({"model": "shop", "row": 0, "method": "gradcam"}, "gradcam explains convolutional"),
    ({"model": "shop", "row": 10_000}, "row 10000 is not a test row"),
    ({"model": "shop"}, "give one input"),
    ({"model": "shop", "row": 1, "record": {}}, "got row, record"),
    ({"model": "nobody", "row": 0}, "no model 'nobody'"),
    ({"model": "shop", "request_id": "nope"}, "no logged request with id 'nope'"),
    ({"model": "shop", "request_id": "blind"}, "logged without its inputs"),
    ({"model": "shop", "image": "IMAGE"}, "reads tabular data, not images"),
    ({"model": "digits", "image": "BIG"}, "the image is 16x16 pixels; model digits:1 reads 8x8"),
    ({"model": "digits", "image": "TEXT"}, "not a readable image"),
    ({"model": "digits", "image": "NONE"}, "no such image file"),
    ({"model": "wide:1", "row": 0, "archive": True}, "is archived"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_input_is_refused_and_nothing_changes(
    path: Path, tmp_path: Path, args: dict, message: str
) -> None:
    from PIL import Image

    from lepton_desktop.core.errors import LeptonError
    from lepton_desktop.core.project import Project
    from lepton_desktop.core.store import serving as serving_store

    args = dict(args)
    with Project.open(path) as project:
        serving_store.add_requests(project.conn, [_logged("blind", inputs=None)])
        if args.pop("archive", False):
            project.models.archive(args["model"])
    files = {"BIG": tmp_path / "big.png", "TEXT": tmp_path / "notes.png",
             "IMAGE": tmp_path / "big.png", "NONE": tmp_path / "missing.png"}  # fmt: skip
    Image.new("L", (16, 16), 128).save(files["BIG"])
    files["TEXT"].write_text("not a picture")
    if "image" in args:
        args["image"] = files[args["image"]]
    before = snapshot(path)
    with Project.open(path) as project, pytest.raises(LeptonError, match=_escaped(message)):
        project.explain(args.pop("model"), **args)
    assert snapshot(path) == before


def _escaped(text: str) -> str:
    import re

    return re.escape(text)


def test_a_project_keeps_the_versions_it_explained_loaded(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lepton_desktop.core import explain as explaining
    from lepton_desktop.core.errors import InvalidOptionError
    from lepton_desktop.core.project import Project

    monkeypatch.setattr(explaining, "CACHED_VERSIONS", 2)
    with Project.open(path) as project:
        first = project.explain("shop", row=2)
        loaded = project._explaining[project.models.get("shop").id]
        again = project.explain("shop", record=project.explain_rows("shop")[0].record(2))
        assert project._explaining[project.models.get("shop").id] is loaded  # not reloaded
        assert again.features == first.features and again.prediction == first.prediction
        project.explain("wide", row=0)
        project.explain("nile", row=0)
        kept = {project.models.get(m).id for m in ("wide", "nile")}
        assert set(project._explaining) == kept  # the two used last
        project.models.archive("nile")
        with pytest.raises(InvalidOptionError, match="is archived"):
            project.explain("nile:1", row=0)  # a loaded version is still checked
