"""What an exported model computes: the trained module plus its decoding, as one graph.

A registered model's raw outputs are logits (classification) or values standardized
with the training targets' mean and spread (regression, forecasting). An exported file
should answer in the user's terms without Lepton at hand, so the exported graph adds
the last step of :meth:`~lepton_desktop.core.inference.predictor.Predictor.decode`:

* classification: two outputs, ``logits`` ``(N, classes)`` and ``probabilities``
  ``(N, classes)`` (softmax of the logits; the class labels are in the metadata);
* regression and forecasting: one output, ``value`` ``(N, 1)``, in the target's units.

The input is always ``input``: float32 ``(N, *input_shape)``, what
:meth:`Predictor.encode` makes of raw records (the preprocessing stays outside the
graph, described by the pipeline in the file's metadata and in bundles).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import torch
from torch import nn

from lepton_desktop.core.inference.predictor import ModelParts, Predictor, softmax

#: The name of the graph's one input.
INPUT_NAME = "input"


class ExportModule(nn.Module):
    """The trained module followed by its decoding (see the module docstring)."""

    def __init__(self, module: nn.Module, classify: bool, mean: float, std: float) -> None:
        super().__init__()
        self.model = module
        self.classify = classify
        self.mean = mean
        self.std = std

    def forward(self, x: torch.Tensor) -> Any:
        """``(logits, probabilities)`` for classification, else ``value``."""
        out = self.model(x)
        if self.classify:
            return out, torch.softmax(out, dim=1)
        return out * self.std + self.mean


@dataclasses.dataclass(frozen=True)
class OutputSpec:
    """One output of the exported graph: its name and width (without the batch axis)."""

    name: str
    width: int


def output_specs(predictor: Predictor) -> list[OutputSpec]:
    """The exported graph's outputs, in order."""
    if predictor.classes:
        width = len(predictor.classes)
        return [OutputSpec("logits", width), OutputSpec("probabilities", width)]
    return [OutputSpec("value", 1)]


def export_module(predictor: Predictor) -> ExportModule:
    """The graph to export for ``predictor``'s model (eval mode, CPU)."""
    params = predictor.parts.params
    return ExportModule(
        predictor.module,
        classify=bool(predictor.classes),
        mean=float(params.get("target_mean", 0.0)),
        std=float(params.get("target_std", 1.0)),
    ).eval()


def reference_outputs(predictor: Predictor, x: np.ndarray) -> dict[str, np.ndarray]:
    """What the exported graph must answer for ``x``, computed the way serving does
    (:meth:`Predictor.forward`, then the decoding), independently of the export."""
    raw = predictor.forward(x)
    if predictor.classes:
        return {"logits": raw, "probabilities": softmax(raw).astype(np.float32)}
    return {"value": predictor.values(raw).astype(np.float32)[:, None]}


def model_metadata(parts: ModelParts) -> dict[str, str]:
    """Plain-text facts stored inside an exported file, for whoever loads it later."""
    predictor_outputs = parts.params.get("classes") or [parts.params.get("target")]
    return {
        "lepton.model": parts.ref,
        "lepton.task": parts.task,
        "lepton.arch": parts.arch,
        "lepton.input": INPUT_NAME,
        "lepton.input_shape": json.dumps(parts.params["spec"]["input_shape"]),
        "lepton.labels": json.dumps(predictor_outputs),
        "lepton.pipeline": json.dumps(parts.pipeline),
        "lepton.signature": json.dumps(parts.signature),
    }
