"""Triton / KServe model repositories: the way out to a serving cluster.

``export --format triton --out REPO`` writes::

    REPO/NAME/config.pbtxt       platform onnxruntime_onnx, batching, inputs, outputs
    REPO/NAME/1/model.onnx       the checked ONNX export (see onnx_model)
    REPO/NAME/labels.txt         classification: one class label per line
    REPO/NAME/README.md          what the inputs are and how to serve the repository

``REPO`` may be an existing repository (the model is added; an existing ``NAME`` is
never replaced) or a new directory. Triton's batching needs the batch axis outside
``dims``: the ONNX graph's first axis is dynamic and ``max_batch_size`` bounds it.
KServe's ``InferenceService`` with ``modelFormat: triton`` serves the same tree.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lepton_desktop.core.export.outputs import INPUT_NAME, OutputSpec, output_specs
from lepton_desktop.core.export.verify import ExportMismatchError
from lepton_desktop.core.inference.predictor import Predictor

PLATFORM = "onnxruntime_onnx"
#: Largest batch Triton's dynamic batcher forms (the graph takes any size).
MAX_BATCH_SIZE = 64
LABELS = "labels.txt"
CONFIG = "config.pbtxt"
#: Triton's version folder for the exported model.
VERSION_DIR = "1"


def triton_name(name: str) -> str:
    """A model name Triton and file systems accept: letters, digits, ``-_.``."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "model"
    return cleaned[:128]


def config_text(predictor: Predictor, name: str) -> str:
    """``config.pbtxt`` (protobuf text format of Triton's ``ModelConfig``)."""
    dims = ", ".join(str(d) for d in predictor.input_shape)
    classify = bool(predictor.classes)
    outputs = ",\n".join(_output(spec, classify) for spec in output_specs(predictor))
    return (
        f"# {predictor.parts.ref} ({predictor.task}, {predictor.parts.arch}) exported by "
        "Lepton Desktop\n"
        f'name: "{name}"\n'
        f'platform: "{PLATFORM}"\n'
        f"max_batch_size: {MAX_BATCH_SIZE}\n"
        "input [\n"
        "  {\n"
        f'    name: "{INPUT_NAME}"\n'
        "    data_type: TYPE_FP32\n"
        f"    dims: [ {dims} ]\n"
        "  }\n"
        "]\n"
        f"output [\n{outputs}\n]\n"
        "dynamic_batching { }\n"
    )


def _output(spec: OutputSpec, classify: bool) -> str:
    labelled = classify and spec.name == "probabilities"
    labels = f'\n    label_filename: "{LABELS}"' if labelled else ""
    return (
        "  {\n"
        f'    name: "{spec.name}"\n'
        "    data_type: TYPE_FP32\n"
        f"    dims: [ {spec.width} ]{labels}\n"
        "  }"
    )


def check_graph(model: bytes, predictor: Predictor) -> None:
    """The ONNX graph's inputs and outputs are exactly what ``config.pbtxt`` declares.

    Raises:
        ExportMismatchError: a name, type or shape differs.
    """
    import onnx

    graph = onnx.load_from_string(model).graph
    declared = [(INPUT_NAME, list(predictor.input_shape))]
    declared_out = [(s.name, [s.width]) for s in output_specs(predictor)]
    for kind, values, wanted in (
        ("input", graph.input, declared),
        ("output", graph.output, declared_out),
    ):
        found = [(v.name, _shape(v)) for v in values]
        if [(n, s[1:]) for n, s in found] != wanted or any(
            v.type.tensor_type.elem_type != onnx.TensorProto.FLOAT for v in values
        ):
            raise ExportMismatchError(
                f"the ONNX graph's {kind}s {found} do not match config.pbtxt's {wanted}; "
                "refused, nothing written"
            )


def _shape(value: Any) -> list[int | str]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def write_model_directory(
    folder: Path, predictor: Predictor, model: bytes, name: str
) -> list[Path]:
    """Fill ``folder`` (the repository's ``NAME`` directory); return the files written."""
    check_graph(model, predictor)
    version = folder / VERSION_DIR
    version.mkdir(parents=True)
    written = [version / "model.onnx", folder / CONFIG, folder / "README.md"]
    written[0].write_bytes(model)
    written[1].write_text(config_text(predictor, name), encoding="utf-8")
    if predictor.classes:
        labels = "".join(re.sub(r"\s+", " ", c) + "\n" for c in predictor.classes)
        (folder / LABELS).write_text(labels, encoding="utf-8")
        written.append(folder / LABELS)
    written[2].write_text(_readme(predictor, name), encoding="utf-8")
    return written


def _readme(predictor: Predictor, name: str) -> str:
    shape = ", ".join(str(d) for d in predictor.input_shape)
    outputs = ", ".join(f"`{s.name}` [N, {s.width}]" for s in output_specs(predictor))
    return f"""# {name}: {predictor.parts.ref} for Triton / KServe

Exported by Lepton Desktop: a {predictor.task} model ({predictor.parts.arch}).

- Input `{INPUT_NAME}`: FP32 [N, {shape}] (N up to {MAX_BATCH_SIZE} per batch).
- Outputs: {outputs}{"; class labels in `labels.txt`" if predictor.classes else ""}.
- The input is the model's encoded features, not raw records: the preprocessing
  pipeline (JSON steps) is stored in the ONNX file's metadata (`lepton.pipeline`),
  next to the labels and the signature. `lepton-desktop serve` applies it for you.

Serve the repository (the directory holding `{name}/`):

    docker run --rm -p 8000:8000 -p 8001:8001 -v "$PWD":/models \\
        nvcr.io/nvidia/tritonserver:<yy.mm>-py3 tritonserver --model-repository=/models

Ask it (KServe V2 / Open Inference Protocol):

    curl -s localhost:8000/v2/models/{name}/infer -d '{{"inputs": [{{"name": "{INPUT_NAME}",
        "datatype": "FP32", "shape": [1, {shape}], "data": [...]}}]}}'

KServe: an `InferenceService` with `modelFormat: {{name: triton}}` and `storageUri`
pointing at a copy of this repository.
"""
