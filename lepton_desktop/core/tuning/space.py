"""Search spaces: what each architecture's trials may vary, with sensible defaults.

A space maps a hyperparameter name to its range, as a JSON or TOML file gives it::

    {"lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": true},
     "layers": {"type": "int", "low": 1, "high": 3},
     "width": {"type": "int", "low": 16, "high": 256, "log": true},
     "optimizer": {"type": "categorical", "choices": ["adam", "adamw", "sgd"]},
     "epochs": 30}

A plain value (``"epochs": 30``) fixes that option for every trial. Names are
:class:`~lepton_desktop.core.training.config.TrainConfig` options, plus two shorthands:
``layers`` x ``width`` (an MLP's hidden layers, all ``width`` wide) and ``blocks`` x
``channels`` (a CNN's blocks; the first has ``channels``, each next one twice as many).

The grid sampler needs a finite grid: categorical choices as they are, ranges with a
``step`` expanded on it, an int range of at most 10 values in full, and any other range
as :data:`GRID_POINTS` evenly spaced values (geometrically for ``log``).
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lepton_desktop.core.errors import InvalidOptionError
from lepton_desktop.core.training.config import ARCHS, TrainConfig

SAMPLERS = ("tpe", "gp", "grid", "random", "cmaes")
PRUNERS = ("median", "hyperband", "none")
TYPES = ("float", "int", "categorical")
#: Points a continuous range contributes to a grid when it has no step.
GRID_POINTS = 5
#: An int range without a step goes into a grid in full up to this many values.
GRID_FULL_INT = 10

_COMMON = (
    "lr",
    "batch_size",
    "optimizer",
    "weight_decay",
    "momentum",
    "dropout",
    "schedule",
    "grad_clip",
    "patience",
    "epochs",
    "class_weights",
)
#: Hyperparameters each architecture understands.
HYPERPARAMETERS = {
    "mlp": (*_COMMON, "layers", "width", "activation", "batch_norm"),
    "cnn": (*_COMMON, "blocks", "channels", "kernel", "augment", "flip"),
    "rnn": (*_COMMON, "cell", "rnn_hidden", "rnn_layers", "window", "bidirectional"),
}
_KEYS = {
    "float": {"type", "low", "high", "log", "step"},
    "int": {"type", "low", "high", "log", "step"},
    "categorical": {"type", "choices"},
}


def _float(low: float, high: float, log: bool = False) -> dict[str, Any]:
    return {"type": "float", "low": low, "high": high, "log": log}


def _int(low: int, high: int, log: bool = False) -> dict[str, Any]:
    return {"type": "int", "low": low, "high": high, "step": 1, "log": log}


def _choice(*choices: Any) -> dict[str, Any]:
    return {"type": "categorical", "choices": list(choices)}


def default_space(arch: str) -> dict[str, dict[str, Any]]:
    """The space searched when none is given: the knobs that matter most for ``arch``.

    Raises:
        InvalidOptionError: unknown architecture.
    """
    _check_arch(arch)
    common = {"lr": _float(1e-4, 1e-1, log=True)}
    if arch == "mlp":
        return common | {
            "batch_size": _choice(16, 32, 64, 128),
            "layers": _int(1, 3),
            "width": _int(16, 256, log=True),
            "dropout": _float(0.0, 0.5),
            "optimizer": _choice("adam", "adamw", "sgd"),
            "weight_decay": _float(1e-6, 1e-2, log=True),
        }
    if arch == "cnn":
        return common | {
            "batch_size": _choice(32, 64, 128),
            "blocks": _int(1, 3),
            "channels": _choice(8, 16, 32),
            "kernel": _choice(3, 5),
            "dropout": _float(0.0, 0.5),
            "optimizer": _choice("adam", "adamw"),
            "weight_decay": _float(1e-6, 1e-2, log=True),
        }
    return common | {
        "batch_size": _choice(16, 32, 64),
        "cell": _choice("lstm", "gru"),
        "rnn_hidden": _int(16, 128, log=True),
        "rnn_layers": _int(1, 2),
        "window": _int(4, 24),
        "dropout": _float(0.0, 0.3),
        "optimizer": _choice("adam", "adamw"),
    }


def load_space(path: Path | str) -> dict[str, Any]:
    """Read a search space from a ``.json`` or ``.toml`` file (not yet validated).

    Raises:
        InvalidOptionError: unreadable file, bad syntax (with the line), not a table.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".toml"):
        raise InvalidOptionError(f"--space {path}: give a .json or .toml file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidOptionError(f"--space {path}: {exc.strerror or exc}") from None
    try:
        space = json.loads(text) if suffix == ".json" else tomllib.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidOptionError(f"--space {path}: line {exc.lineno}: {exc.msg}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidOptionError(f"--space {path}: {exc}") from None
    if not isinstance(space, dict):
        raise InvalidOptionError(f"--space {path}: expected a table of hyperparameters")
    return space


def validate_space(
    space: Mapping[str, Any], arch: str, base: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Check a space against ``arch`` and return it normalized (every entry a dict).

    Every range end and every choice must make a valid training configuration
    together with ``base`` (the study's fixed options).

    Raises:
        InvalidOptionError: naming the parameter: an empty space, an unknown
            hyperparameter for the architecture, low >= high, log with low <= 0,
            empty choices, a value training refuses, ...
    """
    _check_arch(arch)
    if not isinstance(space, dict) or not space:
        raise InvalidOptionError("the search space is empty: give at least one hyperparameter")
    normalized = {name: _normalize(name, spec) for name, spec in space.items()}
    allowed = HYPERPARAMETERS[arch]
    for name in normalized:
        if name not in allowed:
            raise InvalidOptionError(
                f"search space: unknown hyperparameter {name!r} for --arch {arch} "
                f"(choose from {', '.join(allowed)})"
            )
        if base and name in base:
            raise InvalidOptionError(
                f"search space: {name!r} is both searched and fixed to {base[name]!r}"
            )
    for name, spec in normalized.items():
        _check_range(name, spec)
        for value in _extremes(spec):
            _check_trainable(name, value, arch, base or {})
    return normalized


def _check_arch(arch: str) -> None:
    if arch not in ARCHS:
        raise InvalidOptionError(f"--arch {arch!r}: choose one of {', '.join(ARCHS)}")


def _normalize(name: str, spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict):
        if isinstance(spec, list):
            raise InvalidOptionError(
                f"search space: {name!r}: give a table with a type, e.g. "
                '{"type": "categorical", "choices": [...]}'
            )
        return _choice(spec)  # a fixed value: one choice
    kind = spec.get("type")
    if kind not in TYPES:
        raise InvalidOptionError(
            f"search space: {name!r}: type {kind!r}; choose one of {', '.join(TYPES)}"
        )
    unknown = set(spec) - _KEYS[kind]
    if unknown:
        raise InvalidOptionError(
            f"search space: {name!r}: unknown keys {', '.join(sorted(unknown))} for a {kind}"
        )
    return dict(spec)


def _check_range(name: str, spec: dict[str, Any]) -> None:
    if spec["type"] == "categorical":
        _check_choices(name, spec.get("choices"))
        return
    if "low" not in spec or "high" not in spec:
        raise InvalidOptionError(f"search space: {name!r}: a {spec['type']} needs low and high")
    low, high, step = spec["low"], spec["high"], spec.get("step")
    numbers = [v for v in (low, high, step) if v is not None]
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in numbers):
        raise InvalidOptionError(f"search space: {name!r}: low, high and step must be numbers")
    if spec["type"] == "int" and any(not float(v).is_integer() for v in numbers):
        raise InvalidOptionError(f"search space: {name!r}: an int needs whole low, high, step")
    if not math.isfinite(low) or not math.isfinite(high) or low >= high:
        raise InvalidOptionError(f"search space: {name!r}: low {low} must be below high {high}")
    if spec.get("log") and low <= 0:
        raise InvalidOptionError(f"search space: {name!r}: a log range needs low > 0, not {low}")
    if step is not None:
        _check_step(name, spec, step)


def _check_step(name: str, spec: dict[str, Any], step: float) -> None:
    if step <= 0 or step > spec["high"] - spec["low"]:
        raise InvalidOptionError(
            f"search space: {name!r}: step {step} must be above 0 and at most high - low"
        )
    if spec.get("log") and step != 1:
        raise InvalidOptionError(f"search space: {name!r}: log and step cannot be combined")


def _check_choices(name: str, choices: Any) -> None:
    if not isinstance(choices, list) or not choices:
        raise InvalidOptionError(f"search space: {name!r}: choices must be a non-empty list")
    for choice in choices:
        if choice is not None and not isinstance(choice, str | int | float | bool):
            raise InvalidOptionError(
                f"search space: {name!r}: choice {choice!r} must be a number, text or boolean"
            )
    if len({json.dumps(c) for c in choices}) != len(choices):
        raise InvalidOptionError(f"search space: {name!r}: choices repeat a value")


def _extremes(spec: dict[str, Any]) -> list[Any]:
    if spec["type"] == "categorical":
        return list(spec["choices"])
    cast = int if spec["type"] == "int" else float
    return [cast(spec["low"]), cast(spec["high"])]


def _check_trainable(name: str, value: Any, arch: str, base: dict[str, Any]) -> None:
    try:
        config = TrainConfig.from_dict(apply_params({"arch": arch, **base}, {name: value}))
        config.validate()
    except (InvalidOptionError, TypeError, ValueError) as exc:
        raise InvalidOptionError(
            f"search space: {name!r} = {value!r} is impossible: {exc}"
        ) from None


def largest_params(space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The point of ``space`` giving the largest model: every upper bound at once.

    Numbers take their highest value (widths, layers, channels, windows, batch
    sizes), switches are on (bidirectional, batch norm), and an LSTM is larger than
    a GRU; the rest (learning rates, optimizers) take their first choice, since they
    do not change a model's size.
    """
    largest = {}
    for name, spec in space.items():
        if spec["type"] != "categorical":
            largest[name] = int(spec["high"]) if spec["type"] == "int" else spec["high"]
            continue
        choices = spec["choices"]
        numbers = [c for c in choices if isinstance(c, int | float) and not isinstance(c, bool)]
        if numbers and len(numbers) == len(choices):
            largest[name] = max(numbers)
        elif True in choices:
            largest[name] = True
        else:
            largest[name] = "lstm" if "lstm" in choices else choices[0]
    return largest


def apply_params(options: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Training options for one trial: ``options`` with the sampled ``params`` set.

    The shorthands become TrainConfig fields: ``layers``/``width`` -> ``hidden``,
    ``blocks``/``channels`` -> ``channels``.
    """
    merged = dict(options)
    plain = {k: v for k, v in params.items() if k not in ("layers", "width", "blocks", "channels")}
    merged.update(plain)
    defaults = TrainConfig()
    if "layers" in params or "width" in params:
        hidden = tuple(merged.get("hidden") or defaults.hidden)
        width = int(params.get("width", hidden[0]))
        merged["hidden"] = [width] * int(params.get("layers", len(hidden)))
    if "blocks" in params or "channels" in params:
        channels = tuple(merged.get("channels") or defaults.channels)
        first = int(params.get("channels", channels[0]))
        merged["channels"] = [
            first * 2**i for i in range(int(params.get("blocks", len(channels))))
        ]
    return merged


def suggest(trial: Any, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Sample every hyperparameter of ``space`` through an Optuna trial."""
    params = {}
    for name, spec in space.items():
        if spec["type"] == "categorical":
            params[name] = trial.suggest_categorical(name, spec["choices"])
        elif spec["type"] == "int":
            params[name] = trial.suggest_int(
                name,
                int(spec["low"]),
                int(spec["high"]),
                step=int(spec.get("step") or 1),
                log=bool(spec.get("log")),
            )
        else:
            params[name] = trial.suggest_float(
                name,
                float(spec["low"]),
                float(spec["high"]),
                step=spec.get("step"),
                log=bool(spec.get("log")),
            )
    return params


def grid(space: dict[str, dict[str, Any]]) -> dict[str, list[Any]]:
    """The finite grid the grid sampler walks (see the module docstring)."""
    return {name: _grid_values(spec) for name, spec in space.items()}


def grid_size(space: dict[str, dict[str, Any]]) -> int:
    """How many points :func:`grid` has."""
    return math.prod(len(values) for values in grid(space).values())


def _grid_values(spec: dict[str, Any]) -> list[Any]:
    if spec["type"] == "categorical":
        return list(spec["choices"])
    low, high, step = spec["low"], spec["high"], spec.get("step")
    if spec["type"] == "int":
        if step or high - low + 1 <= GRID_FULL_INT:
            return list(range(int(low), int(high) + 1, int(step or 1)))
        return sorted({round(v) for v in _spaced(low, high, bool(spec.get("log")))})
    if step:
        count = math.floor((high - low) / step + 1e-9) + 1
        return [round(low + i * step, 12) for i in range(count)]
    return _spaced(low, high, bool(spec.get("log")))


def _spaced(low: float, high: float, log: bool) -> list[float]:
    if log:
        ratio = (high / low) ** (1 / (GRID_POINTS - 1))
        points = [low * ratio**i for i in range(GRID_POINTS)]
    else:
        points = [low + (high - low) * i / (GRID_POINTS - 1) for i in range(GRID_POINTS)]
    points[-1] = high  # exactly, despite rounding
    return points
