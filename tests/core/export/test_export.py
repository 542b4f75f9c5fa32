"""Exports: every format answers like the model it came from, or is not written at all."""

from __future__ import annotations

import base64
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from lepton_desktop.core.errors import (
    CancelledError,
    InvalidOptionError,
    LeptonError,
    NotFoundError,
)
from lepton_desktop.core.export import ExportMismatchError, OutputExistsError
from lepton_desktop.core.export.onnx_model import check_onnx, onnx_bytes
from lepton_desktop.core.export.verify import CheckBatch, Tolerance, synthetic_batch
from lepton_desktop.core.inference.bundle import read_bundle
from lepton_desktop.core.inference.predictor import ModelParts, Predictor
from lepton_desktop.core.project import Project
from lepton_desktop.core.training.loop import serialize
from lepton_desktop.core.training.models import build
from tests.conftest import SAMPLE_DATA
from tests.export_factory import csv_rows, export_project  # noqa: F401
from tests.helpers import snapshot


@pytest.fixture
def project(export_project: Path) -> Project:  # noqa: F811
    with Project.open(export_project) as opened:
        yield opened


def _records(predictor: Predictor) -> list[dict]:
    """Raw records a client would send, for each kind of model."""
    if predictor.kind == "images":
        pictures = sorted((SAMPLE_DATA / "digits").rglob("*.png"))[:12]
        return [{"image": base64.b64encode(p.read_bytes()).decode()} for p in pictures]
    if predictor.kind == "timeseries":
        column = predictor.raw_inputs[0]["name"]
        series = [float(r[column]) for r in csv_rows("nile.csv")]
        return [{column: series[i : i + 8]} for i in range(0, 80, 7)]
    return csv_rows("iris.csv")[::7]


def _expected(predictor: Predictor, x: np.ndarray) -> dict[str, np.ndarray]:
    answers = predictor.decode(predictor.forward(x))
    if predictor.classes:
        return {
            "probabilities": np.array(
                [[a["probabilities"][c] for c in predictor.classes] for a in answers]
            )
        }
    return {"value": np.array([[a["value"]] for a in answers])}


@pytest.mark.parametrize("model", ["iris", "nile", "digits"])
def test_onnx_answers_like_the_predictor_in_onnxruntime(
    project: Project, tmp_path: Path, model: str
) -> None:
    out = tmp_path / f"{model}.onnx"
    result = project.export(f"{model}:1", "onnx", out)
    assert result.path == out and out.is_file() and result.model == f"{model}:1"
    assert result.max_abs_diff < 1e-4 and "test rows of" in result.checked_on
    predictor = Predictor.from_project(project, f"{model}:1")
    loaded = onnx.load(out)
    onnx.checker.check_model(loaded, full_check=True)
    metadata = {p.key: p.value for p in loaded.metadata_props}
    assert metadata["lepton.model"] == f"{model}:1"
    assert json.loads(metadata["lepton.input_shape"]) == list(predictor.input_shape)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (given,) = session.get_inputs()
    assert given.name == "input" and given.type == "tensor(float)"
    assert given.shape[1:] == list(predictor.input_shape) and isinstance(given.shape[0], str)
    x = predictor.encode(_records(predictor))  # from raw records, a batch size not traced
    names = [o.name for o in session.get_outputs()]
    got = dict(zip(names, session.run(None, {"input": x}), strict=True))
    for name, want in _expected(predictor, x).items():
        np.testing.assert_allclose(got[name], want, rtol=1e-4, atol=1e-4)
    if predictor.classes:
        assert names == ["logits", "probabilities"]
        np.testing.assert_allclose(got["logits"], predictor.forward(x), rtol=1e-4, atol=1e-5)
    else:
        assert names == ["value"]


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("model", ["iris", "nile", "digits"])
def test_torchscript_answers_like_the_predictor(
    project: Project, tmp_path: Path, model: str
) -> None:
    out = tmp_path / f"{model}.pt"
    result = project.export(f"{model}:1", "torchscript", out)
    assert result.max_abs_diff < 1e-4 and result.sha256 and len(result.sha256) == 64
    predictor = Predictor.from_project(project, f"{model}:1")
    extra = {"lepton.json": ""}
    loaded = torch.jit.load(str(out), _extra_files=extra)
    assert json.loads(extra["lepton.json"])["lepton.model"] == f"{model}:1"
    x = predictor.encode(_records(predictor))
    with torch.inference_mode():
        outputs = loaded(torch.from_numpy(x))
    got = outputs[1] if predictor.classes else outputs
    (want,) = _expected(predictor, x).values()
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)


def test_alias_and_progress(project: Project, tmp_path: Path) -> None:
    seen: list[tuple[int, int | None, str]] = []

    class Recorder:
        def update(self, done: int, total: int | None, message: str = "") -> None:
            seen.append((done, total, message))

    result = project.export("iris@champion", "onnx", tmp_path / "m.onnx", reporter=Recorder())
    assert result.model == "iris:1"
    assert seen[0][2] == "loading iris:1" and seen[-1][0] == seen[-1][1] == 4


@pytest.mark.parametrize("fmt", ["bundle", "triton"])
def test_cancelling_midway_leaves_nothing(project: Project, tmp_path: Path, fmt: str) -> None:
    class CancelAtWriting:
        def update(self, done: int, total: int | None, message: str = "") -> None:
            if done == 3:  # the file is being written and checked under its temporary name
                raise CancelledError()

    with pytest.raises(CancelledError):
        project.export("digits:1", fmt, tmp_path / "out", reporter=CancelAtWriting())
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("fmt", ["torchscript", "onnx", "bundle", "triton"])
def test_a_file_that_answers_differently_is_refused_and_not_written(
    project: Project, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / ("repo" if fmt == "triton" else f"m.{fmt}")
    # iris:1's file checked against iris:2's answers: a genuinely different model.
    with pytest.raises(ExportMismatchError, match=r"differs from the model.*refused, nothing"):
        project.export("iris:1", fmt, out, reference="iris:2")
    assert os.listdir(tmp_path) == []  # neither the file nor a temporary one


def test_bundle_round_trip_predicts_like_the_project(project: Project, tmp_path: Path) -> None:
    out = tmp_path / "iris.zip"
    result = project.export("iris@champion", "bundle", out)
    assert result.max_abs_diff == 0.0 and result.notes == ()
    (parts,) = read_bundle(out)
    original = ModelParts.from_project(project, "iris:1")
    assert parts == original  # every field, the weights' bytes included
    rows = csv_rows("iris.csv")
    assert Predictor(parts).predict(rows) == Predictor(original).predict(rows)
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        card = archive.read("models/0/MODEL_CARD.md").decode()
        document = json.loads(archive.read("models/0/model.json"))
        manifest = json.loads(archive.read("manifest.json"))
        onnx_model = archive.read("models/0/model.onnx")
    assert names == {"manifest.json"} | {
        f"models/0/{n}" for n in ("model.json", "weights.pt", "MODEL_CARD.md", "model.onnx")
    }
    assert manifest["format_version"] == 1 and set(manifest["files"]) == names - {"manifest.json"}
    assert document["lineage"]["dataset"] == "iris:1" and document["lineage"]["run_id"] == 1
    assert document["lineage"]["datasets"][0]["source"].endswith("iris.csv")
    for fact in ("iris:1", "species", "accuracy", "| epochs | `8` |", "lepton-desktop serve",
                 "## Global importance (test split)", "| petal_length |"):
        assert fact in card
    assert set(document["lineage"]["importance"]["permutation"]) == {
        "sepal_length", "sepal_width", "petal_length", "petal_width"}
    predictor = Predictor(parts)
    x = predictor.encode(rows)
    assert check_onnx(onnx_model, predictor, CheckBatch(x, "iris rows"), Tolerance()) < 1e-4


def test_triton_repository_config_matches_the_onnx_graph(project: Project, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    result = project.export("iris:1", "triton", repo)
    assert result.path == repo and result.max_abs_diff < 1e-4
    assert sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file()) == [
        "iris/1/model.onnx",
        "iris/README.md",
        "iris/config.pbtxt",
        "iris/labels.txt",
    ]
    config = _model_config(repo / "iris" / "config.pbtxt")
    assert (config.name, config.platform, config.max_batch_size) == (
        "iris",
        "onnxruntime_onnx",
        64,
    )
    assert config.HasField("dynamic_batching")
    graph = onnx.load(repo / "iris" / "1" / "model.onnx").graph
    _assert_same_tensors(config.input, graph.input)
    _assert_same_tensors(config.output, graph.output)
    assert [o.label_filename for o in config.output] == ["", "labels.txt"]
    assert (repo / "iris" / "labels.txt").read_text().split("\n")[:3] == [
        "setosa",
        "versicolor",
        "virginica",
    ]
    # A second model joins the existing repository; an existing one is never replaced.
    project.export("nile", "triton", repo)
    nile = _model_config(repo / "nile" / "config.pbtxt")
    assert list(nile.input[0].dims) == [8, 1] and [o.name for o in nile.output] == ["value"]
    before = (repo / "iris" / "1" / "model.onnx").read_bytes()
    with pytest.raises(OutputExistsError, match="repo/iris already exists"):
        project.export("iris:2", "triton", repo)
    assert (repo / "iris" / "1" / "model.onnx").read_bytes() == before
    assert sorted(os.listdir(repo)) == ["iris", "nile"]


def _model_config(path: Path):
    """Parse config.pbtxt with Triton's own ModelConfig proto (from tritonclient; its
    grpc package needs grpcio to import, the generated proto module does not)."""
    import importlib.util

    import tritonclient
    from google.protobuf import text_format

    source = Path(tritonclient.__file__).parent / "grpc" / "model_config_pb2.py"
    spec = importlib.util.spec_from_file_location("triton_model_config_pb2", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return text_format.Parse(path.read_text(), module.ModelConfig())


def _assert_same_tensors(declared, values) -> None:
    assert [t.name for t in declared] == [v.name for v in values]
    for tensor, value in zip(declared, values, strict=True):
        assert tensor.data_type == 11  # TYPE_FP32
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        dims = value.type.tensor_type.shape.dim
        assert dims[0].dim_param  # the dynamic batch axis, outside Triton's dims
        assert [d.dim_value for d in dims[1:]] == list(tensor.dims)


@pytest.mark.parametrize(
    "spec",
    [
        {"cell": "gru", "layers": 1, "hidden": 12, "bidirectional": False},
        {"cell": "lstm", "layers": 2, "hidden": 12, "bidirectional": True},
    ],
    ids=["gru", "lstm-2-layer-bidirectional"],
)
def test_recurrent_cells_export_to_onnx(spec: dict) -> None:
    full = {
        "arch": "rnn",
        "input_shape": [10, 1],
        "n_outputs": 1,
        "dropout": 0.0,
        "anchor": "last",
    } | spec
    module = build(full)
    torch.manual_seed(0)
    for parameter in module.parameters():  # a zero head would hide the recurrent part
        torch.nn.init.normal_(parameter, std=0.3)
    parts = ModelParts(
        name="rnn", version=1, arch="rnn", task="forecasting",
        params={"spec": full, "target": "y", "target_mean": 900.0, "target_std": 150.0},
        pipeline=[{"step": "window", "column": "y", "window": 10, "horizon": 1,
                   "mean": 900.0, "std": 150.0}],
        signature={}, weights=serialize(module.state_dict()),
    )  # fmt: skip
    predictor = Predictor(parts)
    batch = synthetic_batch(predictor.input_shape)
    model = onnx_bytes(predictor, batch.example)
    assert check_onnx(model, predictor, batch, Tolerance()) < 1e-3


def test_the_dynamo_exporter_also_works(project: Project) -> None:
    predictor = Predictor.from_project(project, "iris")
    batch = synthetic_batch(predictor.input_shape)
    model = onnx_bytes(predictor, batch.example, exporter="dynamo")
    assert check_onnx(model, predictor, batch, Tolerance()) < 1e-4


def test_bad_destinations_and_refs_change_nothing(
    export_project: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.lepton"
    shutil.copy(export_project, path)
    before = snapshot(path)
    existing = tmp_path / "taken.onnx"
    existing.write_bytes(b"keep me")
    cases = [
        ("iris", "onnx", existing, OutputExistsError, "taken.onnx already exists"),
        ("iris", "onnx", tmp_path / "no" / "m.onnx", InvalidOptionError, "no such directory"),
        ("nope", "onnx", tmp_path / "m.onnx", NotFoundError, "no model 'nope'"),
        ("iris:9", "bundle", tmp_path / "m.zip", NotFoundError, "iris:9"),
        ("iris", "keras", tmp_path / "m.h5", InvalidOptionError, "unknown export format 'keras'"),
        ("iris", "triton", existing, OutputExistsError, "already exists"),
    ]
    with Project.open(path) as project:
        for ref, fmt, out, error, message in cases:
            with pytest.raises(error, match=message):
                project.export(ref, fmt, out)
        if os.geteuid() == 0:  # root writes anywhere but to /proc
            unwritable = Path("/proc/lepton-export-test.onnx")
        else:
            locked = tmp_path / "locked"
            locked.mkdir(mode=0o500)
            unwritable = locked / "m.onnx"
        with pytest.raises(LeptonError, match=r"(cannot write|not writable)"):
            project.export("iris", "onnx", unwritable)
        assert not unwritable.exists()
    assert existing.read_bytes() == b"keep me"
    left = {n for n in os.listdir(tmp_path) if not n.startswith("p.lepton")} - {"locked"}
    assert left == {"taken.onnx"}
    assert snapshot(path) == before and before["integrity"] == "ok"


def test_without_its_dataset_a_model_is_checked_on_a_synthetic_batch(
    export_project: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.lepton"
    shutil.copy(export_project, path)
    with Project.open(path) as project:
        project.delete_dataset("iris")
        result = project.export("iris:1", "bundle", tmp_path / "iris.zip")
    assert result.checked_on == "a synthetic batch of 64 rows" and result.max_abs_diff == 0.0
    with zipfile.ZipFile(tmp_path / "iris.zip") as archive:
        card = archive.read("models/0/MODEL_CARD.md").decode()
    assert "no longer in the project" in card
