"""Explanations drawn as PNG files (``explain --out``), with matplotlib's Agg canvas.

No pyplot and no GUI backend: a :class:`~matplotlib.figure.Figure` drawn on
``FigureCanvasAgg``, so the command line never loads Qt. Images get their heat map over
the picture; tables a bar per source column (its raw value in the label); time series
the window with each step's attribution.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lepton_desktop.core.errors import InvalidOptionError

if TYPE_CHECKING:
    from lepton_desktop.core.explain.explainer import Explanation

POSITIVE, NEGATIVE = "#d64545", "#2f6fb0"
#: Bars drawn for a table (the largest |attribution| first); the rest are summed.
MAX_BARS = 20


def save_png(explanation: Explanation, out: Path) -> Path:
    """Draw ``explanation`` into the new file ``out`` (never overwritten; atomic).

    Raises:
        InvalidOptionError: ``out`` exists, or its folder does not.
    """
    out = Path(out)
    if out.exists():
        raise InvalidOptionError(f"{out} exists; choose another name")
    if not out.parent.is_dir():
        raise InvalidOptionError(f"{out.parent}: no such folder")
    figure = _figure(explanation)
    partial = out.with_name(f".{out.name}.partial")
    try:
        figure.savefig(partial, format="png", dpi=110)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return out


def heat_overlay(picture: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """RGB uint8: the picture in grey under the heat map (|attribution|, inferno)."""
    from matplotlib import colormaps

    heat = np.abs(heatmap)
    heat = heat / heat.max() if heat.max() > 0 else heat
    colours = colormaps["inferno"](heat)[..., :3]
    grey = picture.astype(np.float64).mean(axis=2, keepdims=True) / 255.0
    blended = 0.45 * grey + 0.55 * colours
    return (np.clip(blended, 0, 1) * 255).round().astype(np.uint8)


def _figure(explanation: Explanation) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 4.2))
    FigureCanvasAgg(figure)
    if explanation.kind == "images":
        _draw_image(figure, explanation)
    elif explanation.kind == "timeseries":
        _draw_series(figure, explanation)
    else:
        _draw_table(figure, explanation)
    figure.suptitle(_title(explanation), fontsize=9)
    figure.tight_layout()
    return figure


def _title(explanation: Explanation) -> str:
    answer = explanation.prediction
    said = answer.get("label", answer.get("value"))
    return (f"{explanation.model} answered {said!r} · {explanation.method_name} of the "
            f"{explanation.target}\nbaseline: {explanation.baseline}")  # fmt: skip


def _draw_image(figure: Any, explanation: Explanation) -> None:
    assert explanation.picture is not None and explanation.heatmap is not None
    left, right = figure.subplots(1, 2)
    left.imshow(explanation.picture, interpolation="nearest")
    left.set_title("input", fontsize=9)
    right.imshow(heat_overlay(explanation.picture, explanation.heatmap),
                 interpolation="nearest")  # fmt: skip
    right.set_title("attribution (|value|, brighter = more)", fontsize=9)
    for axis in (left, right):
        axis.set_axis_off()


def _draw_table(figure: Any, explanation: Explanation) -> None:
    features = explanation.features[:MAX_BARS][::-1]
    axis = figure.subplots()
    labels = [f"{f['column']} = {_value(f['value'])}" for f in features]
    values = [f["attribution"] for f in features]
    axis.barh(labels, values, color=[POSITIVE if v >= 0 else NEGATIVE for v in values])
    axis.axvline(0, color="#888888", linewidth=0.8)
    axis.set_xlabel("attribution (towards the answer: red, away: blue)", fontsize=9)
    axis.tick_params(labelsize=8)


def _draw_series(figure: Any, explanation: Explanation) -> None:
    top, bottom = figure.subplots(2, 1, sharex=True)
    steps = np.arange(len(explanation.values)) - len(explanation.values) + 1
    top.plot(steps, explanation.values, color="#555555", marker="o", markersize=3)
    top.set_ylabel("value", fontsize=9)
    values = explanation.steps
    bottom.bar(steps, values, color=[POSITIVE if v >= 0 else NEGATIVE for v in values])
    bottom.axhline(0, color="#888888", linewidth=0.8)
    bottom.set_ylabel("attribution", fontsize=9)
    bottom.set_xlabel("time step (0: the last value)", fontsize=9)


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "missing" if value is None else str(value)
