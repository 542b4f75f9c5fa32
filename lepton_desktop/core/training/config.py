"""Training configuration: every knob with a default that trains well, checked up front.

:meth:`TrainConfig.validate` refuses impossible values before any work starts, with
messages that name the option as the command line spells it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from lepton_desktop.core.errors import InvalidOptionError
from lepton_desktop.core.names import check_name

ARCHS = ("mlp", "cnn", "rnn")
TASKS = ("classification", "regression", "forecasting")
OPTIMIZERS = ("adam", "adamw", "sgd")
LOSSES = ("cross_entropy", "mse", "huber")
SCHEDULES = ("none", "cosine", "step", "plateau")
DEVICES = ("auto", "cpu", "cuda", "mps")
DP_BATCH_NORM = ("replace", "refuse")
ACTIVATIONS = ("relu", "gelu", "tanh", "silu")
CELLS = ("lstm", "gru")
#: What the model trains on: the train split, or train and validation together (a
#: final fit once the hyperparameters are chosen; it keeps the last epoch's weights).
TRAIN_ON = ("train", "train+val")
#: Which dataset kinds each architecture fits.
ARCH_KINDS = {"mlp": ("tabular",), "cnn": ("images",), "rnn": ("timeseries",)}


@dataclasses.dataclass
class TrainConfig:
    """Hyperparameters of one run. ``None`` means "decide from the data"."""

    arch: str = "mlp"
    task: str | None = None
    target: str | None = None
    epochs: int | None = None
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 1e-4
    loss: str | None = None
    class_weights: bool = False
    schedule: str = "plateau"
    patience: int = 20
    grad_clip: float = 5.0
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    hidden: tuple[int, ...] = (128, 64)
    activation: str = "relu"
    dropout: float = 0.1
    batch_norm: bool = False
    channels: tuple[int, ...] = (32, 64)
    kernel: int = 3
    augment: bool = True
    flip: bool = False
    cell: str = "lstm"
    rnn_layers: int = 1
    rnn_hidden: int = 64
    window: int | None = None
    horizon: int = 1
    bidirectional: bool = False
    model_name: str | None = None
    train_on: str = "train"
    #: Fit a strong classical model beside the network (core/training/strong_baseline).
    strong_baseline: bool = True
    #: Differential privacy (core/training/privacy): DP-SGD for this target ε when set.
    dp_epsilon: float | None = None
    #: δ of the guarantee; None: the power of ten below 1/n, at most 1e-5.
    dp_delta: float | None = None
    #: Each example's gradient is clipped to this L2 norm.
    dp_max_grad_norm: float = 1.0
    #: Batch norm under DP: ``replace`` it by group norm (said in the run), or ``refuse``.
    dp_batch_norm: str = "replace"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (tuples become lists)."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are refused."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise InvalidOptionError(f"unknown training options: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
        }
        return cls(**values)

    def validate(self) -> None:
        """Refuse impossible values. Raises InvalidOptionError naming the option."""
        self._check_choices()
        self._check_numbers()
        if self.model_name is not None:
            check_name(self.model_name, "--name")
        if self.private:
            check_numbers(self.dp_epsilon, self.dp_delta, self.dp_max_grad_norm)
        elif self.dp_delta is not None:
            raise InvalidOptionError("--dp-delta applies to private training; give --dp-epsilon")

    @property
    def private(self) -> bool:
        """Whether this run trains with differential privacy (``--dp-epsilon``)."""
        return self.dp_epsilon is not None

    def _check_choices(self) -> None:
        choices = {
            "--arch": (self.arch, ARCHS),
            "--optimizer": (self.optimizer, OPTIMIZERS),
            "--schedule": (self.schedule, SCHEDULES),
            "--device": (self.device, DEVICES),
            "--activation": (self.activation, ACTIVATIONS),
            "--cell": (self.cell, CELLS),
            "--train-on": (self.train_on, TRAIN_ON),
            "--dp-batch-norm": (self.dp_batch_norm, DP_BATCH_NORM),
        }
        if self.task is not None:
            choices["--task"] = (self.task, TASKS)
        if self.loss is not None:
            choices["--loss"] = (self.loss, LOSSES)
        for flag, (value, allowed) in choices.items():
            if value not in allowed:
                raise InvalidOptionError(f"{flag} {value!r}: choose one of {', '.join(allowed)}")

    def _check_numbers(self) -> None:
        self._check_counts()
        if not 0 < self.lr <= 10:
            raise InvalidOptionError(f"--lr {self.lr}: the learning rate must be in (0, 10]")
        if not 0 <= self.dropout < 1:
            raise InvalidOptionError(f"--dropout {self.dropout}: must be in [0, 1)")
        non_negative = {
            "--weight-decay": self.weight_decay,
            "--grad-clip": self.grad_clip,
            "--patience": self.patience,
            "--momentum": self.momentum,
        }
        for flag, value in non_negative.items():
            if value < 0:
                raise InvalidOptionError(f"{flag} {value}: must not be negative")
        for flag, sizes in (("--hidden", self.hidden), ("--channels", self.channels)):
            if not sizes or any(int(s) < 1 for s in sizes):
                raise InvalidOptionError(f"{flag} {sizes}: give one or more positive sizes")

    def _check_counts(self) -> None:
        counts = {
            "--batch-size": self.batch_size,
            "--horizon": self.horizon,
            "--kernel": self.kernel,
            "--rnn-layers": self.rnn_layers,
            "--rnn-hidden": self.rnn_hidden,
            "--epochs": self.epochs,
            "--window": self.window,
        }
        for flag, value in counts.items():
            if value is None and flag in ("--epochs", "--window"):
                continue  # decided from the data
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidOptionError(f"{flag} {value}: must be a whole number of at least 1")


def check_numbers(epsilon: Any, delta: Any, max_grad_norm: Any) -> None:
    """Refuse an ε, δ or clipping norm that is not a positive finite number.

    Raises:
        InvalidOptionError: naming the option as the command line spells it.
    """
    for flag, value in (("--dp-epsilon", epsilon), ("--dp-max-grad-norm", max_grad_norm)):
        if not _positive_number(value):
            raise InvalidOptionError(f"{flag} {value!r}: must be a number greater than 0")
    if delta is not None and not (_positive_number(delta) and delta < 1):
        raise InvalidOptionError(f"--dp-delta {delta!r}: must be a number between 0 and 1")


def _positive_number(value: Any) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and math.isfinite(value) and value > 0
