"""The three model families, built from a JSON spec so a saved model never needs pickles.

A spec holds the architecture's hyperparameters and the data's shapes; with the
``state_dict`` (loaded with ``weights_only=True``) it rebuilds the exact model.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import nn

from lepton_desktop.core.errors import InvalidOptionError
from lepton_desktop.core.store.db import MAX_VALUE_BYTES
from lepton_desktop.core.system.memory import check_fits, format_bytes
from lepton_desktop.core.training.config import TrainConfig

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}


def model_spec(
    config: TrainConfig, input_shape: tuple[int, ...], n_outputs: int
) -> dict[str, Any]:
    """The JSON description of the model to build for ``config`` and the data's shapes."""
    spec: dict[str, Any] = {
        "arch": config.arch,
        "input_shape": list(input_shape),
        "n_outputs": n_outputs,
        "dropout": config.dropout,
    }
    if config.arch == "mlp":
        spec |= {
            "hidden": list(config.hidden),
            "activation": config.activation,
            "batch_norm": config.batch_norm,
        }
    elif config.arch == "cnn":
        spec |= {"channels": list(config.channels), "kernel": config.kernel}
    else:
        spec |= {
            "cell": config.cell,
            "layers": config.rnn_layers,
            "hidden": config.rnn_hidden,
            "bidirectional": config.bidirectional,
            "anchor": "last",
        }
    return spec


def _dropout(p: float) -> nn.Module:
    """``nn.Dropout(p)``, or ``nn.Identity()`` for p = 0: the same output and the same
    state_dict keys (neither has state), without a dropout call per layer and step."""
    return nn.Dropout(p) if p > 0 else nn.Identity()


def _norm(features: int, spec: dict[str, Any], batch_norm: type[nn.Module]) -> nn.Module:
    """Batch norm, or (``spec["norm"] == "group"``: a private run's model) the group norm
    Opacus' ``ModuleValidator.fix`` puts in its place: ``gcd(32, features)`` groups."""
    if spec.get("norm") == "group":
        return nn.GroupNorm(math.gcd(32, features), features)
    return batch_norm(features)


def build(spec: dict[str, Any]) -> nn.Module:
    """A fresh model for ``spec`` (unchecked: see :func:`build_for_training`)."""
    return {"mlp": MLP, "cnn": CNN, "rnn": RNN}[spec["arch"]](spec)


#: How to make each architecture smaller, as the command line spells it.
_SMALLER = {
    "mlp": "use smaller --hidden sizes or a smaller --batch-size",
    "cnn": "use fewer --channels or a smaller --batch-size",
    "rnn": "use a smaller hidden size, --window or --batch-size",
}


#: A ``last`` checkpoint holds the weights and the optimizer's state (Adam: two
#: moments per weight), so about three times the weights.
CHECKPOINT_COPIES = 3


def check_training_memory(spec: dict[str, Any], batch_size: int) -> Footprint:
    """Refuse to train a model for ``spec`` that would not fit in memory, or whose
    checkpoints would not fit in the project file.

    Raises:
        InvalidOptionError: naming the parameters, the estimate and the limit.
    """
    size = footprint(spec)
    arch = str(spec["arch"])
    checkpoint = size.parameters * BYTES_PER_VALUE * CHECKPOINT_COPIES
    if checkpoint > MAX_VALUE_BYTES:
        raise InvalidOptionError(
            f"this {arch.upper()} has {size.parameters:,} parameters: its checkpoints would "
            f"take about {format_bytes(checkpoint)}, and a project file keeps at most "
            f"{format_bytes(MAX_VALUE_BYTES)} in one piece; make the model smaller"
        )
    check_fits(
        size.training_bytes(batch_size),
        f"training this {arch.upper()} ({size.parameters:,} parameters, batches of "
        f"{batch_size:,})",
        _SMALLER.get(arch, "make the model smaller"),
    )
    return size


def build_for_training(spec: dict[str, Any], batch_size: int) -> nn.Module:
    """A fresh model for ``spec``, after checking that training it fits in memory."""
    check_training_memory(spec, batch_size)
    return build(spec)


def build_for_inference(spec: dict[str, Any], what: str) -> nn.Module:
    """A model for ``spec`` to load weights into, after checking that it fits in memory.

    Args:
        spec: the architecture (from a project or a bundle: not trusted).
        what: the model as the user knows it (``bundle.zip: models/0``), for the error.

    Raises:
        InvalidOptionError: the model would not fit (or the spec is not a model).
    """
    try:
        size = footprint(spec)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise InvalidOptionError(f"{what}: the architecture is not a model ({exc})") from None
    check_fits(
        size.inference_bytes(),
        f"{what} ({size.parameters:,} parameters)",
        "it is too large for this machine",
    )
    return build(spec)


class MLP(nn.Module):
    """Fully connected layers for tabular data."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = spec["input_shape"][0]
        for size in spec["hidden"]:
            layers.append(nn.Linear(width, size))
            if spec["batch_norm"]:
                layers.append(_norm(size, spec, nn.BatchNorm1d))
            layers += [_ACTIVATIONS[spec["activation"]](), _dropout(spec["dropout"])]
            width = size
        layers.append(nn.Linear(width, spec["n_outputs"]))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits or values, one row per input row."""
        return self.net(x)


class CNN(nn.Module):
    """Convolution blocks (conv, batch norm, ReLU, pooling while the map is large)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        channels, height, width = spec["input_shape"]
        blocks: list[nn.Module] = []
        for out in spec["channels"]:
            blocks += [
                nn.Conv2d(channels, out, spec["kernel"], padding=spec["kernel"] // 2),
                _norm(out, spec, nn.BatchNorm2d),
                nn.ReLU(),
            ]
            if min(height, width) >= 4:
                blocks.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
            channels = out
        pooled = min(4, height, width)
        blocks.append(nn.AdaptiveAvgPool2d(pooled))
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.Flatten(),
            _dropout(spec["dropout"]),
            nn.Linear(channels * pooled * pooled, 128),
            nn.ReLU(),
            _dropout(spec["dropout"]),
            nn.Linear(128, spec["n_outputs"]),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits for a batch of images ``(N, C, H, W)``."""
        return self.head(self.features(x))


class RNN(nn.Module):
    """An LSTM or GRU over a window; the last step's state predicts the horizon.

    With ``anchor: "last"`` (every new model; older specs lack the key) the network sees
    the window relative to its last value and predicts the change from it: a forecast
    starts as the persistence forecast (the head starts at zero) and learns corrections,
    and a trending series whose later values leave the training range (GDP, CO2, prices)
    looks the same to the network as the ones it trained on. With the levels themselves
    as input, such series are forecast hundreds of times worse than persistence.
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        cell = nn.LSTM if spec["cell"] == "lstm" else nn.GRU
        self.rnn = cell(
            input_size=spec["input_shape"][-1],
            hidden_size=spec["hidden"],
            num_layers=spec["layers"],
            batch_first=True,
            bidirectional=spec["bidirectional"],
            dropout=spec["dropout"] if spec["layers"] > 1 else 0.0,
        )
        width = spec["hidden"] * (2 if spec["bidirectional"] else 1)
        self.head = nn.Linear(width, spec["n_outputs"])
        self.anchored = spec.get("anchor") == "last"
        if self.anchored:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One value per window ``(N, window, features)``."""
        if not self.anchored:
            out, _ = self.rnn(x)
            return self.head(out[:, -1])
        last = x[:, -1:, :]
        out, _ = self.rnn(x - last)
        return self.head(out[:, -1]) + last[:, 0, : self.head.out_features]


# -- sizes before building ----------------------------------------------------------------

#: Bytes per value (float32 weights and activations).
BYTES_PER_VALUE = 4
#: Copies of every parameter alive while training: the weights, their gradients, the
#: optimizer's two moments (Adam), the best epoch's state, and a checkpoint's bytes.
PARAMETER_COPIES = 6
#: Copies of every activation kept per example: the forward value and its gradient.
ACTIVATION_COPIES = 2


@dataclasses.dataclass(frozen=True)
class Footprint:
    """A model's size, worked out from its spec without allocating anything.

    Attributes:
        parameters: trainable parameters (exactly what :func:`parameter_count` of
            the built model says).
        activations: values the forward pass keeps per example (an estimate).
    """

    parameters: int
    activations: int

    def training_bytes(self, batch_size: int) -> int:
        """Memory training takes: every parameter copy, and a batch's activations."""
        values = self.parameters * PARAMETER_COPIES
        values += self.activations * batch_size * ACTIVATION_COPIES
        return values * BYTES_PER_VALUE

    def inference_bytes(self, batch_size: int = 1) -> int:
        """Memory answering a batch takes: the weights (loaded, then copied into the
        model) and the batch's activations."""
        return (self.parameters * 2 + self.activations * batch_size) * BYTES_PER_VALUE


def footprint(spec: dict[str, Any]) -> Footprint:
    """The size of the model :func:`build` would make for ``spec``, without building it.

    Raises:
        KeyError, TypeError, ValueError: a spec that does not describe a model.
    """
    sizes = {"mlp": _mlp_size, "cnn": _cnn_size, "rnn": _rnn_size}[spec["arch"]](spec)
    parameters, activations = sizes
    return Footprint(int(parameters), int(activations))


def _linear(inputs: int, outputs: int) -> int:
    return inputs * outputs + outputs


def _mlp_size(spec: dict[str, Any]) -> tuple[int, int]:
    width = _whole(spec["input_shape"][0])
    parameters, activations = 0, width
    per_layer = 3 + bool(spec["batch_norm"])  # linear, norm, activation, dropout outputs
    for size in map(_whole, spec["hidden"]):
        parameters += _linear(width, size) + (2 * size if spec["batch_norm"] else 0)
        activations += per_layer * size
        width = size
    outputs = _whole(spec["n_outputs"])
    return parameters + _linear(width, outputs), activations + outputs


def _cnn_size(spec: dict[str, Any]) -> tuple[int, int]:
    channels, height, width = (_whole(v) for v in spec["input_shape"])
    kernel = _whole(spec["kernel"])
    parameters, activations = 0, channels * height * width
    for out in map(_whole, spec["channels"]):
        parameters += channels * out * kernel * kernel + out + 2 * out  # conv and its norm
        activations += 3 * out * height * width  # conv, norm, ReLU outputs
        if min(height, width) >= 4:
            height, width = height // 2, width // 2
            activations += out * height * width
        channels = out
    pooled = min(4, height, width)
    outputs = _whole(spec["n_outputs"])
    parameters += _linear(channels * pooled * pooled, 128) + _linear(128, outputs)
    return parameters, activations + channels * pooled * pooled + 3 * 128 + outputs


def _rnn_size(spec: dict[str, Any]) -> tuple[int, int]:
    gates = 4 if spec["cell"] == "lstm" else 3
    hidden, layers = _whole(spec["hidden"]), _whole(spec["layers"])
    directions = 2 if spec["bidirectional"] else 1
    window, features = (_whole(v) for v in spec["input_shape"])
    parameters, inputs = 0, features
    for _ in range(layers):
        parameters += directions * gates * (inputs * hidden + hidden * hidden + 2 * hidden)
        inputs = hidden * directions
    parameters += _linear(inputs, _whole(spec["n_outputs"]))
    # Each step keeps its gates, cell and hidden state for the backward pass.
    activations = window * features + window * layers * directions * hidden * (gates + 2)
    return parameters, activations


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"a size must be a whole number, not {value!r}")
    return value


def parameter_count(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def augment(images: torch.Tensor, generator: torch.Generator, flip: bool = False) -> torch.Tensor:
    """Light augmentation: shifts up to 10%, rotations up to 10 degrees, optional flips.

    (Horizontal flips are off by default: they change the meaning of digits and
    letters; photos of objects usually welcome them.)
    """
    n = images.shape[0]
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(10)
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * 0.2
    mirror = torch.ones(n)
    if flip:
        mirror = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) * mirror, torch.sin(angle)
    theta = torch.stack(
        [
            torch.stack([cos, -sin, shift[:, 0]], 1),
            torch.stack([sin * mirror, torch.cos(angle), shift[:, 1]], 1),
        ],
        1,
    ).to(images)
    grid = nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
    return nn.functional.grid_sample(images, grid, padding_mode="border", align_corners=False)
