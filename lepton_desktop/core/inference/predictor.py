"""A model version ready to answer: raw inputs in, labels or values out.

One :class:`Predictor` serves the local server, the exports and the bundle: it holds
the rebuilt torch module (weights loaded with ``weights_only=True``), the preprocessing
pipeline stored with the version, and the decoding of outputs (class labels with
probabilities, or values in the target's own units). It is built from
:class:`ModelParts`, which a project's registry or an exported bundle provides, so
serving never needs the project file the model came from.

Three steps, kept apart so a server can batch the middle one across requests:

* :meth:`Predictor.encode` — raw records (CSV-like column values, an image, a window
  of the series) -> the model's float32 input array;
* :meth:`Predictor.forward` — inputs -> raw outputs (logits or scaled values);
* :meth:`Predictor.decode` — raw outputs -> answers.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from lepton_desktop.core.errors import LeptonError
from lepton_desktop.core.preprocessing import images, series
from lepton_desktop.core.preprocessing.check import PipelineError, check_pipeline
from lepton_desktop.core.preprocessing.tabular import NumericPlan, RecordError, apply_pipeline
from lepton_desktop.core.store import models as model_store

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext
    from lepton_desktop.core.entities import ModelVersion


class InvalidInputError(LeptonError):
    """A client's input cannot be turned into model inputs; the message names why."""


def parse_json(body: bytes) -> Any:
    """A client's JSON body. Raises InvalidInputError naming what is malformed."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"malformed JSON: {exc}") from None


@dataclasses.dataclass(frozen=True)
class ModelParts:
    """Everything a model version is made of, independent of where it is stored."""

    name: str
    version: int
    arch: str
    task: str
    params: dict[str, Any]
    pipeline: list[dict[str, Any]]
    signature: dict[str, Any]
    weights: bytes
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """``name:version``."""
        return f"{self.name}:{self.version}"

    @classmethod
    def from_project(cls, ctx: ProjectContext, ref: str) -> ModelParts:
        """The parts of version ``ref`` (``name``, ``name:N`` or ``name@alias``)."""
        version = model_store.resolve(ctx.conn, ref)
        return cls.from_version(version, model_store.weights(ctx.conn, version.id))

    @classmethod
    def from_version(cls, version: ModelVersion, weights: bytes) -> ModelParts:
        """The parts of a registry record and its weights."""
        return cls(
            name=version.name,
            version=version.version,
            arch=version.arch,
            task=version.task,
            params=version.params,
            pipeline=version.pipeline,
            signature=version.signature,
            weights=weights,
            metrics=version.metrics,
            aliases=version.aliases,
        )


class Predictor:
    """A loaded model version (see the module docstring)."""

    def __init__(self, parts: ModelParts) -> None:
        import torch

        from lepton_desktop.core.training.models import build_for_inference

        try:  # a step this release cannot apply: refuse now, not at every request
            check_pipeline(parts.pipeline)
        except PipelineError as exc:
            raise PipelineError(f"model {parts.ref}: {exc}") from None
        self.parts = parts
        self.module = build_for_inference(parts.params["spec"], f"model {parts.ref}")
        # torch.load directly, not training.loop.deserialize: that module imports pandas,
        # a second the server's cold start does not need to spend.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (a raw pickle's protocol: refused anyway)
            state = torch.load(io.BytesIO(parts.weights), map_location="cpu", weights_only=True)
        self.module.load_state_dict(state)
        self.module.eval()
        self._run = eval_forward(self.module)
        self._torch = torch
        self._lock = threading.Lock()  # a torch module is not re-entrant across threads
        self.kind = _kind(parts.pipeline)
        self.classes: list[str] | None = parts.params.get("classes")
        self.input_shape: tuple[int, ...] = tuple(parts.params["spec"]["input_shape"])
        self._step = _last_step(parts.pipeline, _STEP_OF_KIND.get(self.kind))
        self._plan = NumericPlan.compile(parts.pipeline) if self.kind == "tabular" else None

    @classmethod
    def from_project(cls, ctx: ProjectContext, ref: str) -> Predictor:
        """Load version ``ref`` of ``project``'s registry."""
        return cls(ModelParts.from_project(ctx, ref))

    # -- description -------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The model's name."""
        return self.parts.name

    @property
    def version(self) -> int:
        """The version number."""
        return self.parts.version

    @property
    def task(self) -> str:
        """classification, regression or forecasting."""
        return self.parts.task

    @property
    def raw_inputs(self) -> list[dict[str, str]]:
        """What a client sends: ``[{"name", "dtype"}]`` with dtype numeric, categorical,
        text, image (base64 or bytes) or series (a list of the last ``window`` values)."""
        if self.kind == "images":
            return [{"name": "image", "dtype": "image"}]
        if self.kind == "timeseries":
            return [{"name": str(self._step["column"]), "dtype": "series"}]
        return list(self.parts.signature.get("inputs", []))

    @property
    def feature_names(self) -> list[str]:
        """The model's input columns after preprocessing, in order (tabular models)."""
        names = next(
            (s.get("names") for s in reversed(self.parts.pipeline) if s.get("step") == "features"),
            None,
        )
        return [str(n) for n in names] if isinstance(names, list) else []

    @property
    def window(self) -> int | None:
        """Time series: how many past values one forecast reads."""
        return int(self._step["window"]) if self.kind == "timeseries" else None

    @property
    def run(self) -> Callable[[Any], Any]:
        """The module's eval-mode forward without hook handling (see :func:`eval_forward`);
        hold :attr:`exclusive` to call it."""
        return self._run

    @property
    def exclusive(self) -> threading.Lock:
        """Hold it to use :attr:`module` directly (a torch module is not re-entrant)."""
        return self._lock

    def picture(self, record: Any) -> Any:
        """Image models: the decoded picture of one record (``{"image": ...}`` or bytes).

        Raises:
            InvalidInputError: not base64 or bytes, or not a readable picture.
        """
        return self._picture(record, 0)

    # -- the three steps -----------------------------------------------------------------

    def encode(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Raw records -> a float32 ``(len(records), *input_shape)`` array.

        Raises:
            InvalidInputError: a missing feature, a value of the wrong type, an image
                that cannot be read, a window of the wrong length; the message names the
                record (0-based) and the field.
        """
        if not records:
            raise InvalidInputError("no records given")
        if self.kind == "images":
            pictures = [self._picture(r, i) for i, r in enumerate(records)]
            return images.encode_pictures(pictures, self._step)
        if self.kind == "timeseries":
            return np.stack([self._window(r, i) for i, r in enumerate(records)])
        return self._tabular(records)

    def check_inputs(self, x: np.ndarray) -> np.ndarray:
        """Validate already-encoded inputs (a V2 ``input`` tensor); return them as float32.

        Raises:
            InvalidInputError: wrong shape or values that are not finite numbers.
        """
        try:
            x = np.asarray(x, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"inputs must be numbers: {exc}") from None
        if x.ndim == len(self.input_shape):
            x = x[None]
        if tuple(x.shape[1:]) != self.input_shape:
            raise InvalidInputError(
                f"inputs have shape {list(x.shape)}; expected [N, "
                f"{', '.join(str(s) for s in self.input_shape)}]"
            )
        if not np.isfinite(x).all():
            raise InvalidInputError(self._not_finite(x))
        return np.ascontiguousarray(x)

    def _not_finite(self, x: np.ndarray) -> str:
        # Name the first bad value's row and, for tabular inputs, its feature.
        where = np.argwhere(~np.isfinite(x))[0]
        value = x[tuple(where)]
        row, rest = int(where[0]), [int(i) for i in where[1:]]
        features = self.feature_names
        what = f"input {rest}"
        if len(rest) == 1 and rest[0] < len(features):
            what = f"feature {features[rest[0]]!r}"
        return f"record {row}: {what} must be a finite number, got {value}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Model inputs -> raw outputs ``(N, n_outputs)`` (logits or scaled values)."""
        torch = self._torch
        with self._lock, torch.inference_mode():
            return self._run(torch.from_numpy(np.ascontiguousarray(x))).float().numpy()

    def decode(self, outputs: np.ndarray) -> list[dict[str, Any]]:
        """Raw outputs -> one answer per row.

        Classification: ``{"label": ..., "probabilities": {label: p}}``; regression and
        forecasting: ``{"value": v}`` in the target's own units.
        """
        if self.classes:
            probabilities = softmax(outputs)
            return [
                {
                    "label": self.classes[int(row.argmax())],
                    "probabilities": {c: float(p) for c, p in zip(self.classes, row, strict=True)},
                }
                for row in probabilities
            ]
        return [{"value": float(v)} for v in self.values(outputs)]

    def values(self, outputs: np.ndarray) -> np.ndarray:
        """Regression and forecasting: outputs in the target's units, shape ``(N,)``."""
        params = self.parts.params
        return outputs[:, 0] * float(params.get("target_std", 1.0)) + float(
            params.get("target_mean", 0.0)
        )

    def predict(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """``decode(forward(encode(records)))``."""
        return self.decode(self.forward(self.encode(records)))

    # -- encoders ------------------------------------------------------------------------

    def _tabular(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        if self._plan is not None:
            fast = self._plan.encode(records)
            if fast is not None:
                return fast
        for row, record in enumerate(records):
            if not isinstance(record, Mapping):
                raise InvalidInputError(
                    f"record {row}: expected an object of column values, got "
                    f"{type(record).__name__}"
                )
        try:
            _, matrix = apply_pipeline(self.parts.pipeline, records)
        except RecordError as exc:
            raise InvalidInputError(str(exc)) from None
        if matrix.dtype == object:  # a text column the pipeline does not encode
            raise InvalidInputError("a feature is text the model cannot read")
        if matrix.shape[1] != self.input_shape[0]:
            raise InvalidInputError(
                f"the records give {matrix.shape[1]} features; the model reads "
                f"{self.input_shape[0]}"
            )
        return np.nan_to_num(matrix).astype(np.float32)

    def _picture(self, record: Any, row: int) -> Any:
        data = record.get("image") if isinstance(record, Mapping) else record
        if isinstance(data, str):
            try:
                data = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidInputError(f"record {row}: 'image' is not valid base64") from None
        if not isinstance(data, bytes | bytearray):
            raise InvalidInputError(f"record {row}: send the image as base64 text or bytes")
        try:
            return images.decode_image(bytes(data))
        except images.ImageDecodeError as exc:
            raise InvalidInputError(f"record {row}: {exc}") from None

    def _window(self, record: Any, row: int) -> np.ndarray:
        step = self._step
        column, window = str(step["column"]), int(step["window"])
        values = record
        if isinstance(record, Mapping):
            values = record.get(column, record.get("values"))
        if not isinstance(values, Sequence) or isinstance(values, str | bytes):
            raise InvalidInputError(
                f"record {row}: send {column!r} as a list of the last {window} values"
            )
        try:
            numbers = np.array([float(v) for v in values], dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInputError(f"record {row}: {column!r} must hold numbers") from None
        if len(numbers) < window:
            raise InvalidInputError(
                f"record {row}: {column!r} has {len(numbers)} values; the model reads the "
                f"last {window}"
            )
        if not np.isfinite(numbers[-window:]).all():
            raise InvalidInputError(f"record {row}: {column!r} holds NaN or infinite values")
        return series.encode_window(numbers, step)


def eval_forward(module: Any) -> Callable[[Any], Any]:
    """The module's eval-mode forward, as a chain of its layers' own ``forward`` methods.

    For the feed-forward architectures (MLP; CNN: features then head) this calls every
    layer's ``forward`` directly, which computes exactly what ``module(x)`` computes (the
    same operations in the same order) without ``nn.Module.__call__``'s hook handling,
    about 5 us a layer: half a small MLP's time. Dropout is the identity in eval mode
    and is left out. Any other architecture (the RNN) runs as ``module(x)``.
    """
    from torch import nn

    from lepton_desktop.core.training.models import CNN, MLP

    if isinstance(module, MLP):
        containers = [module.net]
    elif isinstance(module, CNN):
        containers = [module.features, module.head]
    else:
        return module
    layers = [layer for c in containers for layer in c if not isinstance(layer, nn.Dropout)]
    if any(list(layer.children()) for layer in layers):
        return module  # nested containers: keep it simple
    steps = [layer.forward for layer in layers]

    def run(x: Any) -> Any:
        for step in steps:
            x = step(x)
        return x

    return run


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


#: The pipeline step that turns a raw input of each non-tabular kind into model inputs.
_STEP_OF_KIND = {"images": "image", "timeseries": "window"}


def _kind(pipeline: Sequence[Mapping[str, Any]]) -> str:
    steps = {s.get("step") for s in pipeline}
    if "image" in steps:
        return "images"
    if "window" in steps:
        return "timeseries"
    return "tabular"


def _last_step(pipeline: Sequence[Mapping[str, Any]], name: str | None) -> dict[str, Any]:
    if name is None:
        return {}
    return dict(next(s for s in reversed(pipeline) if s.get("step") == name))
