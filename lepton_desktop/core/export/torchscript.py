"""TorchScript export: a ``.pt`` file torch (Python or C++) loads without Lepton.

The traced graph is :class:`~lepton_desktop.core.export.outputs.ExportModule`: one
input ``(batch, *input_shape)``; it returns ``(logits, probabilities)`` for
classification and ``value`` ``(batch, 1)`` otherwise, like the ONNX export. The
model's facts (labels, pipeline, signature) travel in the file as the extra file
``lepton.json`` (``torch.jit.load(path, _extra_files={"lepton.json": ""})``).

The written file is loaded back and run on the held-out batch and on one row before
it is kept.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from lepton_desktop.core.export.outputs import (
    export_module,
    model_metadata,
    output_specs,
)
from lepton_desktop.core.export.verify import CheckBatch, Tolerance, check_runs
from lepton_desktop.core.inference.predictor import Predictor

#: The extra file inside the ``.pt`` that holds the model's metadata.
METADATA_FILE = "lepton.json"


def write_torchscript(
    predictor: Predictor,
    batch: CheckBatch,
    path: Path,
    tolerance: Tolerance,
    reference: Predictor | None = None,
) -> float:
    """Trace, save to ``path``, reload and compare with ``reference`` (default: the model).

    Returns:
        The largest absolute difference found by the check.

    Raises:
        ExportMismatchError: the reloaded file answers differently.
    """
    import torch

    metadata = json.dumps(model_metadata(predictor.parts))
    with warnings.catch_warnings():
        # torch 2.9+ marks torch.jit deprecated; TorchScript is still what C++ and
        # older runtimes load, which is why this format is offered at all.
        warnings.simplefilter("ignore", DeprecationWarning)
        # "might not generalize": the RNN's checks of its input size are traced as
        # constants (they are, for one model); the check below runs another batch size.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(
            export_module(predictor), torch.from_numpy(batch.example), check_trace=False
        )
        torch.jit.save(traced, str(path), _extra_files={METADATA_FILE: metadata})
        loaded = torch.jit.load(str(path), map_location="cpu")
    names = [spec.name for spec in output_specs(predictor)]

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            return _by_name(names, loaded(torch.from_numpy(np.ascontiguousarray(x))))

    return check_runs("the TorchScript file", run, reference or predictor, batch, tolerance)


def _by_name(names: list[str], outputs: Any) -> dict[str, np.ndarray]:
    if not isinstance(outputs, tuple | list):
        outputs = (outputs,)
    return {n: o.float().numpy() for n, o in zip(names, outputs, strict=False)}
