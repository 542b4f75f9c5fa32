"""Captum's attribution methods, called the way each kind of model needs them.

Every function takes the model (eval mode), one encoded input ``x`` of shape
``(1, *input_shape)``, the output index to explain and, where the method has one,
the baseline, and returns attributions shaped like ``x`` (Grad-CAM: ``(1, 1, H, W)``).
Integrated Gradients runs :data:`IG_STEPS` steps in batches holding at most
:data:`MAX_BATCH_VALUES` input values, so its memory stays bounded however large the
input (a table row or a small picture takes all its steps in one pass).

A one-pass Integrated Gradients computes the Gauss-Legendre rule (nodes and weights:
an eigenvalue problem, 5-10 ms for 50 steps, twice per call through ``attribute``)
once per step count and hands it to Captum's own single-pass step,
``IntegratedGradients._attribute(..., step_sizes_and_alphas=...)``, as Captum's
internal batching does: the same attributions (a test checks it against ``attribute``)
in a third of the time on a table row.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from lepton_desktop.core.errors import InvalidOptionError

if TYPE_CHECKING:
    import torch
    from torch import nn

METHODS = ("ig", "gradcam", "occlusion")
METHOD_NAMES = {
    "ig": "Integrated Gradients",
    "gradcam": "Grad-CAM",
    "occlusion": "Occlusion",
}
#: Riemann/Gauss-Legendre steps of Integrated Gradients (Captum's default).
IG_STEPS = 50
#: Inputs per forward pass of Occlusion.
INTERNAL_BATCH = 32
#: Input values per forward/backward pass of Integrated Gradients (16 MB of float32).
MAX_BATCH_VALUES = 4_000_000


def internal_batch_size(input_values: int) -> int:
    """IG's steps per pass: all of them unless that would hold more than the bound."""
    return max(1, min(IG_STEPS, MAX_BATCH_VALUES // max(1, input_values)))


def check_method(method: Any, kind: str) -> str:
    """``method`` if ``kind``'s models can be explained by it.

    Raises:
        InvalidOptionError: an unknown method, or Grad-CAM on a model without convolutions.
    """
    if method not in METHODS:
        raise InvalidOptionError(
            f"unknown explanation method {method!r}; choose one of {', '.join(METHODS)}"
        )
    if method == "gradcam" and kind != "images":
        raise InvalidOptionError(
            "gradcam explains convolutional (image) models; use ig or occlusion for a "
            f"{'table' if kind == 'tabular' else 'time series'}"
        )
    return str(method)


def integrated_gradients(
    forward: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    baseline: torch.Tensor,
    target: int,
) -> np.ndarray:
    """IG attributions (Gauss-Legendre steps; the caller measures completeness).

    ``forward``: the model, or a function computing what it computes (the predictor's
    hook-free chain of layers).
    """
    from captum.attr import IntegratedGradients

    explainer = IntegratedGradients(forward)
    batch = internal_batch_size(int(x[0].numel()))
    if batch >= IG_STEPS and x.shape[0] == 1:  # every step in one pass (see the docstring)
        (attributions,) = explainer._attribute(
            (x,), (baseline,), target=target, n_steps=IG_STEPS,
            step_sizes_and_alphas=gauss_legendre(IG_STEPS),
        )  # fmt: skip
    else:
        attributions = explainer.attribute(
            x, baselines=baseline, target=target, n_steps=IG_STEPS, internal_batch_size=batch
        )
    return attributions.detach().numpy()


@functools.cache
def gauss_legendre(steps: int) -> tuple[list[float], list[float]]:
    """Captum's Gauss-Legendre step sizes and alphas for ``steps`` steps (computed once)."""
    from captum.attr._utils.approximation_methods import approximation_parameters

    step_sizes, alphas = approximation_parameters("gausslegendre")
    return list(step_sizes(steps)), list(alphas(steps))


def gradcam(module: nn.Module, x: torch.Tensor, target: int) -> np.ndarray:
    """Grad-CAM on the last convolution, upsampled to the input's height and width."""
    from captum.attr import LayerAttribution, LayerGradCam

    layer = last_conv(module)
    cam = LayerGradCam(module, layer).attribute(x, target=target, relu_attributions=True)
    size = (int(x.shape[-2]), int(x.shape[-1]))
    upsampled = LayerAttribution.interpolate(cam, size, interpolate_mode="bilinear")
    return upsampled.detach().numpy()


def last_conv(module: nn.Module) -> nn.Module:
    """The model's last ``Conv2d`` (Grad-CAM's layer)."""
    from torch import nn

    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise InvalidOptionError("gradcam needs a model with a convolution layer")
    return convs[-1]


def occlusion(
    module: nn.Module,
    x: torch.Tensor,
    baseline: torch.Tensor,
    target: int,
    window: tuple[int, ...],
) -> np.ndarray:
    """Occlusion: the output's drop when a ``window`` of the input takes the baseline."""
    from captum.attr import Occlusion

    strides = tuple(max(1, w // 2) if w > 1 else 1 for w in window)
    attributions = Occlusion(module).attribute(
        x,
        sliding_window_shapes=window,
        strides=strides,
        baselines=baseline,
        target=target,
        perturbations_per_eval=INTERNAL_BATCH,
    )
    return attributions.detach().numpy()


def blurred(x: np.ndarray, sigma: float) -> np.ndarray:
    """A batch of images ``(N, C, H, W)`` blurred over height and width (Gaussian)."""
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(x, sigma=(0, 0, sigma, sigma), mode="nearest").astype(np.float32)
