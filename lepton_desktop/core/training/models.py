"""The three model families, built from a JSON spec so a saved model never needs pickles.

A spec holds the architecture's hyperparameters and the data's shapes; with the
``state_dict`` (loaded with ``weights_only=True``) it rebuilds the exact model.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

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


def build(spec: dict[str, Any]) -> nn.Module:
    """A fresh model for ``spec``."""
    return {"mlp": MLP, "cnn": CNN, "rnn": RNN}[spec["arch"]](spec)


class MLP(nn.Module):
    """Fully connected layers for tabular data."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = spec["input_shape"][0]
        for size in spec["hidden"]:
            layers.append(nn.Linear(width, size))
            if spec["batch_norm"]:
                layers.append(nn.BatchNorm1d(size))
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
                nn.BatchNorm2d(out),
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
