"""A stored pipeline checked before a model is loaded, so serving never fails on it later.

A pipeline comes from the project or from a bundle, which may come from anywhere (or
from a newer release): every step must be one this release knows, with the keys and
value types its code reads, and sizes within bounds, or the model is refused when it
is loaded, with a message naming the step, instead of being reported ready and then
failing every request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lepton_desktop.core.errors import LeptonError

#: Pictures are resized to at most this many pixels a side (the model's input).
MAX_IMAGE_SIDE = 4096
#: A forecast reads at most this many past values.
MAX_WINDOW = 100_000


class PipelineError(LeptonError):
    """A stored pipeline this release cannot apply; the message names the step."""


def check_pipeline(steps: Any) -> None:
    """Refuse a pipeline whose steps this release cannot apply.

    Raises:
        PipelineError: not a list of steps, an unknown step, or a step lacking a key
            or holding a value of the wrong type; the message names the step.
    """
    if not isinstance(steps, list):
        raise PipelineError("the preprocessing pipeline must be a list of steps")
    for index, step in enumerate(steps):
        kind = step.get("step") if isinstance(step, Mapping) else None
        checker = _CHECKS.get(kind) if isinstance(kind, str) else None
        if checker is None:
            raise PipelineError(
                f"preprocessing step {index} is {kind!r}, which this release of Lepton "
                f"Desktop does not know (known: {', '.join(_CHECKS)}); a newer release may "
                "have written it"
            )
        problem = checker(step)
        if problem:
            raise PipelineError(f"preprocessing step {index} ({kind}): {problem}")


def _input(step: Mapping[str, Any]) -> str | None:
    columns = step.get("columns")
    if not isinstance(columns, list) or not all(
        isinstance(c, Mapping) and _strings([c.get("name"), c.get("dtype")]) for c in columns
    ):
        return "'columns' must list {name, dtype} objects"
    return None


def _fill(step: Mapping[str, Any]) -> str | None:
    if not isinstance(step.get("method"), str) or not _strings(step.get("columns")):
        return "needs a 'method' and the 'columns' it fills"
    if step["method"] != "drop" and not isinstance(step.get("values"), Mapping):
        return "'values' must map columns to their fill values"
    return None


def _scale(step: Mapping[str, Any]) -> str | None:
    method, columns = step.get("method"), step.get("columns")
    keys = {"standard": ("mean", "std"), "minmax": ("min", "max")}.get(str(method))
    if keys is None:
        return f"'method' must be standard or minmax, not {method!r}"
    if not isinstance(columns, Mapping) or not all(
        isinstance(p, Mapping) and all(_finite(p.get(k)) for k in keys) for p in columns.values()
    ):
        return f"'columns' must map columns to finite {' and '.join(keys)}"
    return None


def _onehot(step: Mapping[str, Any]) -> str | None:
    columns = step.get("columns")
    if not isinstance(columns, Mapping) or not all(isinstance(c, list) for c in columns.values()):
        return "'columns' must map columns to their categories"
    return None


def _features(step: Mapping[str, Any]) -> str | None:
    return None if _strings(step.get("names")) else "'names' must list the model's inputs"


def _image(step: Mapping[str, Any]) -> str | None:
    size = step.get("size")
    if step.get("mode") not in ("L", "RGB"):
        return f"'mode' must be L or RGB, not {step.get('mode')!r}"
    if not isinstance(size, list) or len(size) != 2 or not all(
        _count(side, MAX_IMAGE_SIDE) for side in size
    ):
        return f"'size' must be [width, height], each 1 to {MAX_IMAGE_SIDE} pixels"
    return _spread(step)


def _window(step: Mapping[str, Any]) -> str | None:
    if not isinstance(step.get("column"), str):
        return "'column' must name the series"
    if not _count(step.get("window"), MAX_WINDOW) or not _count(step.get("horizon"), MAX_WINDOW):
        return f"'window' and 'horizon' must be whole numbers from 1 to {MAX_WINDOW:,}"
    return _spread(step)


def _spread(step: Mapping[str, Any]) -> str | None:
    mean, std = step.get("mean"), step.get("std")
    if not _finite(mean) or not _finite(std) or std == 0:
        return "'mean' and 'std' must be finite numbers, 'std' not 0"
    return None


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _count(value: Any, most: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= most


def _strings(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str) and all(
        isinstance(v, str) for v in value
    )


_CHECKS = {
    "input": _input,
    "fill": _fill,
    "scale": _scale,
    "onehot": _onehot,
    "features": _features,
    "image": _image,
    "window": _window,
}
