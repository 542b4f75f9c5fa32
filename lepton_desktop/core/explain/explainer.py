"""Why a model version answered what it did, for one input.

An :class:`Explainer` wraps a loaded :class:`~lepton_desktop.core.inference.predictor.
Predictor` (the same encoding training and serving use) and a baseline fitting its
data: the training mean in the model's input space for tables, the image blurred for
CNNs, the window held at its last value for RNNs. It attributes the output the model
chose (the predicted class's logit, or the predicted value) to the input with Captum,
and maps the attributions back to what the user knows: a table's source columns
(one-hot groups summed; a scaled column is its source column) with their raw values,
a heat map over the picture, one number per time step of the window.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from lepton_desktop.core.explain import methods
from lepton_desktop.core.inference.predictor import InvalidInputError, Predictor
from lepton_desktop.core.preprocessing.tabular import feature_sources

if TYPE_CHECKING:
    import torch

#: Gaussian blur of the image baseline, as a fraction of the picture's larger side.
BLUR_FRACTION = 0.125


@dataclasses.dataclass(frozen=True)
class Explanation:
    """One explained prediction.

    Attributes:
        model: ``name:version``.
        kind: tabular, images or timeseries.
        method: ig, gradcam or occlusion; ``method_name`` its full name.
        baseline: what the input was compared with, in words.
        target: the output explained, in words (a class's logit, or the value).
        prediction: the model's answer, as ``/predict`` gives it.
        output, baseline_output: the explained output for the input and the baseline
            (None where the method has no baseline); attributions are in its units.
        delta: Integrated Gradients' completeness gap, ``sum - (output -
            baseline_output)`` (None for the other methods).
        features: tables: ``{"column", "value", "attribution"}`` per source column,
            the largest ``|attribution|`` first.
        heatmap: images: ``(height, width)`` attributions summed over the channels.
        picture: images: the picture as the model saw it, ``(height, width, 3)`` uint8.
        values, steps: time series: the window's raw values and their attributions.
    """

    model: str
    kind: str
    method: str
    baseline: str
    target: str
    prediction: dict[str, Any]
    output: float
    baseline_output: float | None
    delta: float | None
    features: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    heatmap: np.ndarray | None = None
    picture: np.ndarray | None = None
    values: list[float] = dataclasses.field(default_factory=list)
    steps: list[float] = dataclasses.field(default_factory=list)

    @property
    def method_name(self) -> str:
        """The method's full name."""
        return methods.METHOD_NAMES[self.method]

    @property
    def total(self) -> float:
        """The sum of every attribution."""
        if self.heatmap is not None:
            return float(self.heatmap.sum())
        if self.steps:
            return float(sum(self.steps))
        return float(sum(f["attribution"] for f in self.features))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the picture is left out (the caller has it); floats rounded."""
        out: dict[str, Any] = {
            "model": self.model, "kind": self.kind, "method": self.method,
            "method_name": self.method_name, "baseline": self.baseline,
            "target": self.target, "prediction": self.prediction,
            "output": self.output, "baseline_output": self.baseline_output,
            "delta": self.delta, "total": self.total,
        }  # fmt: skip
        if self.kind == "tabular":
            out["features"] = self.features
        elif self.kind == "images" and self.heatmap is not None:
            out["heatmap"] = np.round(self.heatmap, 6).tolist()
        else:
            out["steps"] = [
                {"step": i - len(self.steps) + 1, "value": v, "attribution": a}
                for i, (v, a) in enumerate(zip(self.values, self.steps, strict=True))
            ]
        return out


class Explainer:
    """Explains a loaded model version's answers (see the module docstring).

    Args:
        predictor: the loaded version.
        train_mean: tables: the mean encoded training row (the IG baseline); None
            when the training data is not at hand (a bundle): zeros are used instead.
    """

    def __init__(self, predictor: Predictor, train_mean: np.ndarray | None = None) -> None:
        self.predictor = predictor
        self.kind = predictor.kind
        self.train_mean = train_mean
        names = predictor.feature_names
        self._sources = feature_sources(predictor.parts.pipeline, names) if names else []
        self._table_baseline_outputs: np.ndarray | None = None

    @classmethod
    def with_training_rows(
        cls, predictor: Predictor, train_records: list[dict[str, Any]]
    ) -> Explainer:
        """An explainer whose table baseline is the mean of ``train_records``, encoded."""
        if predictor.kind != "tabular" or not train_records:
            return cls(predictor)
        mean = predictor.encode(train_records).mean(axis=0, dtype=np.float64)
        return cls(predictor, mean.astype(np.float32))

    # -- explaining ------------------------------------------------------------------

    def explain(self, record: Any, method: str = "ig") -> Explanation:
        """Explain the model's answer to one raw record (as ``/predict`` takes it).

        Raises:
            InvalidOptionError: an unknown method, or one this kind of model cannot use.
            InvalidInputError: a record the model cannot read (a missing column, an
                image of the wrong size or not an image at all); the message says which.
        """
        method = methods.check_method(method, self.kind)
        if self.kind == "images":
            self._check_picture_size(record)
        x = self.predictor.encode([record])
        return self.explain_encoded(x, record, method)

    def explain_encoded(self, x: np.ndarray, record: Any, method: str = "ig") -> Explanation:
        """Explain an encoded input ``(1, *input_shape)``; ``record`` gives the raw values."""
        import torch

        predictor = self.predictor
        method = methods.check_method(method, self.kind)
        outputs = predictor.forward(x)
        target, target_words, unit = self._target(outputs)
        baseline, baseline_words = self._baseline(x, method)
        tensor = torch.from_numpy(np.ascontiguousarray(x))
        base_tensor = torch.from_numpy(baseline) if baseline is not None else None
        with predictor.exclusive, torch.enable_grad():
            attributions = self._attribute(tensor, base_tensor, target, method) * unit
        output = self._output(outputs, target)
        baseline_output = delta = None
        if baseline is not None:
            baseline_output = self._output(self._baseline_outputs(baseline), target)
        if method == "ig" and baseline_output is not None:
            delta = float(attributions.sum()) - (output - baseline_output)
        explanation = Explanation(
            model=predictor.parts.ref, kind=self.kind, method=method,
            baseline=baseline_words, target=target_words,
            prediction=predictor.decode(outputs)[0],
            output=output, baseline_output=baseline_output, delta=delta,
        )  # fmt: skip
        return self._mapped(explanation, attributions[0], x[0], record)

    def _attribute(
        self, x: torch.Tensor, baseline: torch.Tensor | None, target: int, method: str
    ) -> np.ndarray:
        module = self.predictor.module
        if method == "ig":
            assert baseline is not None
            return methods.integrated_gradients(self.predictor.run, x, baseline, target)
        if method == "gradcam":
            cam = methods.gradcam(module, x, target)
            return np.broadcast_to(cam, (1, 1, *x.shape[-2:])).copy()
        assert baseline is not None
        return methods.occlusion(module, x, baseline, target, self._window(x))

    def _window(self, x: torch.Tensor) -> tuple[int, ...]:
        if self.kind == "images":
            channels, height, width = (int(s) for s in x.shape[1:])
            side = max(2, min(height, width) // 8)
            return (channels, side, side)
        return (1,) * (x.dim() - 1)

    # -- what is explained, against what --------------------------------------------

    def _target(self, outputs: np.ndarray) -> tuple[int, str, float]:
        """The output index, in words, and the factor to the answer's units."""
        classes = self.predictor.classes
        if classes:
            index = int(outputs[0].argmax())
            return index, f"logit of {classes[index]!r} (the predicted class)", 1.0
        spread = float(self.predictor.parts.params.get("target_std", 1.0))
        return 0, "predicted value (in the target's units)", spread

    def _output(self, outputs: np.ndarray, target: int) -> float:
        if self.predictor.classes:
            return float(outputs[0, target])
        return float(self.predictor.values(outputs)[0])

    def _baseline(self, x: np.ndarray, method: str) -> tuple[np.ndarray | None, str]:
        if method == "gradcam":
            return None, "none: Grad-CAM weighs the last convolution's maps by their gradients"
        if self.kind == "images":
            if method == "occlusion":
                return np.zeros_like(x), "the training pixel mean (grey patches slid over it)"
            sigma = max(1.0, BLUR_FRACTION * max(x.shape[-2:]))
            return methods.blurred(x, sigma), f"the image blurred (Gaussian, σ = {sigma:g} px)"
        if self.kind == "timeseries":
            last = np.repeat(x[:, -1:, :], x.shape[1], axis=1)
            return last, "the window held at its last value (no change)"
        if self.train_mean is not None:
            return self.train_mean[None].copy(), "the training mean of every column"
        return np.zeros_like(x), "zeros (the training data is not at hand)"

    def _baseline_outputs(self, baseline: np.ndarray) -> np.ndarray:
        # A table's baseline is the same for every row (the training mean, or zeros):
        # its outputs are computed once. Images and windows have their own.
        if self.kind != "tabular":
            return self.predictor.forward(baseline)
        if self._table_baseline_outputs is None:
            self._table_baseline_outputs = self.predictor.forward(baseline)
        return self._table_baseline_outputs

    def _check_picture_size(self, record: Any) -> None:
        step = next(s for s in self.predictor.parts.pipeline if s.get("step") == "image")
        picture = self.predictor.picture(record)
        width, height = (int(v) for v in step["size"])
        if picture.size != (width, height):
            raise InvalidInputError(
                f"the image is {picture.size[0]}x{picture.size[1]} pixels; model "
                f"{self.predictor.parts.ref} reads {width}x{height} pictures (resize it first: "
                "the heat map is drawn over the model's own input)"
            )

    # -- back to what the user knows -------------------------------------------------

    def _mapped(
        self, explanation: Explanation, attributions: np.ndarray, x: np.ndarray, record: Any
    ) -> Explanation:
        if self.kind == "images":
            step = next(s for s in self.predictor.parts.pipeline if s.get("step") == "image")
            return dataclasses.replace(
                explanation,
                heatmap=attributions.sum(axis=0).astype(np.float64),
                picture=_picture(x, step),
            )
        if self.kind == "timeseries":
            column = str(self.predictor.raw_inputs[0]["name"])
            raw = (
                record.get(column, record.get("values")) if isinstance(record, Mapping) else record
            )
            window = len(attributions)
            return dataclasses.replace(
                explanation,
                values=[float(v) for v in list(raw)[-window:]],
                steps=[float(a) for a in attributions[:, 0]],
            )
        return dataclasses.replace(explanation, features=self._columns(attributions, record))

    def _columns(self, attributions: np.ndarray, record: Any) -> list[dict[str, Any]]:
        totals: dict[str, float] = {}
        for source, value in zip(self._sources, attributions, strict=True):
            totals[source] = totals.get(source, 0.0) + float(value)
        rows = [
            {"column": c, "value": record.get(c) if isinstance(record, Mapping) else None,
             "attribution": a}
            for c, a in totals.items()
        ]  # fmt: skip
        return sorted(rows, key=lambda r: -abs(r["attribution"]))


def _picture(x: np.ndarray, step: dict[str, Any]) -> np.ndarray:
    """The encoded picture back to 8-bit RGB pixels ``(height, width, 3)``."""
    pixels = np.clip(x * float(step["std"]) + float(step["mean"]), 0.0, 1.0)
    rgb = np.repeat(pixels, 3, axis=0) if pixels.shape[0] == 1 else pixels[:3]
    return (rgb.transpose(1, 2, 0) * 255).round().astype(np.uint8)
