"""ONNX export, checked in onnxruntime before it is kept.

The graph is :class:`~lepton_desktop.core.export.outputs.ExportModule`: input
``input`` float32 ``(batch, *input_shape)``; outputs ``logits`` and ``probabilities``
``(batch, classes)`` for classification, ``value`` ``(batch, 1)`` in the target's units
otherwise; the batch axis is dynamic. Opset 17 runs on onnxruntime 1.14 and later
(and so on Triton's onnxruntime backend of the last years).

torch's TorchScript-based exporter is used first: it exports our three model families
(MLP, CNN, LSTM/GRU) in about 0.1 s, where the torch.export-based one takes 2-3 s
and needs onnxscript. The torch.export-based exporter is the fallback for a torch
that no longer has the former; either way the file is run in onnxruntime and
compared with the eager model before it is written.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lepton_desktop.core.errors import LeptonError
from lepton_desktop.core.export.outputs import (
    INPUT_NAME,
    export_module,
    model_metadata,
    output_specs,
)
from lepton_desktop.core.export.verify import CheckBatch, Tolerance, check_runs
from lepton_desktop.core.inference.predictor import Predictor

#: The ONNX opset written.
OPSET = 17
#: The exporters tried, in order.
EXPORTERS = ("torchscript", "dynamo")


class OnnxExportError(LeptonError):
    """torch could not express the model in ONNX."""


def onnx_bytes(predictor: Predictor, example: np.ndarray, exporter: str | None = None) -> bytes:
    """The serialized, ``onnx.checker``-valid model (metadata included).

    Args:
        predictor: the model to export.
        example: a few inputs to trace with (two rows or more, so that no axis of
            size one is mistaken for a fixed one).
        exporter: ``torchscript`` or ``dynamo``; default: the first that works.

    Raises:
        OnnxExportError: no exporter could express the model.
    """
    import onnx

    failures = []
    for name in (exporter,) if exporter else EXPORTERS:
        try:
            model = _EXPORT[name](predictor, example)
            break
        except Exception as exc:  # torch raises many types here; the next exporter may work
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
    else:
        raise OnnxExportError(
            f"torch cannot export {predictor.parts.ref} to ONNX ({'; '.join(failures)})"
        )
    model.doc_string = f"{predictor.parts.ref} exported by Lepton Desktop"
    for key, value in model_metadata(predictor.parts).items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def _names(predictor: Predictor) -> list[str]:
    return [spec.name for spec in output_specs(predictor)]


def _torchscript_exporter(predictor: Predictor, example: np.ndarray) -> Any:
    import onnx
    import torch

    names = _names(predictor)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # "legacy exporter" deprecation and the LSTM batch-size caution: the file is
        # run at two batch sizes right after, which is the check the caution asks for.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            export_module(predictor),
            (torch.from_numpy(example),),
            buffer,  # type: ignore[arg-type]  # the legacy exporter writes to any file object
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=names,
            dynamic_axes={n: {0: "batch"} for n in [INPUT_NAME, *names]},
            opset_version=OPSET,
        )
    return onnx.load_from_string(buffer.getvalue())


def _dynamo_exporter(predictor: Predictor, example: np.ndarray) -> Any:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            export_module(predictor),
            (torch.from_numpy(example),),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=_names(predictor),
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            opset_version=max(OPSET, 18),  # the lowest this exporter writes
            verbose=False,
        )
    if program is None:  # only when asked not to build a program, which we never do
        raise RuntimeError("torch.onnx.export returned no program")
    return program.model_proto


_EXPORT = {"torchscript": _torchscript_exporter, "dynamo": _dynamo_exporter}


def onnx_runner(model: bytes) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """A function giving the outputs of ``model`` in onnxruntime (CPU) by name.

    The session is built once, however many batches the function is called on.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # a check on a few rows; threads cost more than they win
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(names, session.run(names, {INPUT_NAME: x}), strict=True))

    return run


def check_onnx(
    model: bytes, predictor: Predictor, batch: CheckBatch, tolerance: Tolerance
) -> float:
    """Compare ``model`` in onnxruntime with ``predictor`` on the batch and on one row.

    Returns:
        The largest absolute difference.

    Raises:
        ExportMismatchError: the outputs differ beyond ``tolerance``.
    """
    run = onnx_runner(model)
    return check_runs("the ONNX model in onnxruntime", run, predictor, batch, tolerance)


def write_onnx(
    predictor: Predictor,
    batch: CheckBatch,
    path: Path,
    tolerance: Tolerance,
    reference: Predictor | None = None,
) -> float:
    """Export, check against ``reference`` (default: the same model), write ``path``.

    Returns:
        The largest absolute difference found by the check.
    """
    model = onnx_bytes(predictor, batch.example)
    worst = check_onnx(model, reference or predictor, batch, tolerance)
    path.write_bytes(model)
    return worst
