"""Checking an exported file against the model it came from, before it is kept.

Every export runs the written file (TorchScript reloaded, ONNX in onnxruntime, a
bundle read back) on a held-out batch and compares its outputs with the eager model's
(:func:`~lepton_desktop.core.export.outputs.reference_outputs`). A file whose answers
differ by more than the tolerance is refused and never written where the user asked.

The held-out batch is real whenever the project still has the model's dataset: the
first rows of its test split, encoded by the same code that encoded them for training
(so they go through the stored pipeline); otherwise a seeded synthetic batch of the
right shape (inputs are standardized, so a standard normal sample is in range).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from lepton_desktop.core.errors import LeptonError
from lepton_desktop.core.store import datasets as dataset_store

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext
    from lepton_desktop.core.entities import ModelVersion
    from lepton_desktop.core.inference.predictor import Predictor

#: Rows of the held-out batch.
CHECK_ROWS = 64
#: Datasets larger than this (rows; images are decoded, so fewer) are not reloaded
#: just to check an export (a synthetic batch is used instead): loading them would
#: cost far more than the export itself.
MAX_DATASET_ROWS = 200_000
MAX_IMAGE_ROWS = 20_000
#: Outputs may differ by ``ATOL + RTOL * |expected|`` (float32 kernels of different
#: runtimes round differently; a wrong graph is off by far more).
ATOL = 1e-4
RTOL = 1e-4


class ExportMismatchError(LeptonError):
    """The exported file does not compute what the model computes; it was not kept."""


@dataclasses.dataclass(frozen=True)
class CheckBatch:
    """Inputs to check an export on, and where they came from."""

    x: np.ndarray
    source: str

    @property
    def example(self) -> np.ndarray:
        """Two rows to trace an export with (a batch axis of one could be taken as fixed)."""
        return self.x[:2] if len(self.x) >= 2 else np.repeat(self.x[:1], 2, axis=0)


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """How far an exported output may be from the eager model's."""

    atol: float = ATOL
    rtol: float = RTOL


def check_batch(ctx: ProjectContext, version: ModelVersion) -> CheckBatch:
    """The held-out batch for ``version`` (see the module docstring)."""
    real = _test_rows(ctx, version)
    if real is not None:
        return real
    return synthetic_batch(tuple(version.params["spec"]["input_shape"]))


def synthetic_batch(input_shape: tuple[int, ...]) -> CheckBatch:
    """A seeded standard normal batch of ``CHECK_ROWS`` inputs."""
    x = np.random.default_rng(0).standard_normal((CHECK_ROWS, *input_shape))
    return CheckBatch(x.astype(np.float32), f"a synthetic batch of {CHECK_ROWS} rows")


def _test_rows(ctx: ProjectContext, version: ModelVersion) -> CheckBatch | None:
    from lepton_desktop.core.training import data as training_data
    from lepton_desktop.core.training.config import TrainConfig

    if version.dataset_version_id is None:
        return None
    try:
        dataset = dataset_store.get_version(ctx.conn, version.dataset_version_id)
        if dataset.n_rows > (MAX_IMAGE_ROWS if dataset.kind == "images" else MAX_DATASET_ROWS):
            return None
        config = TrainConfig.from_dict(version.params["config"])
        data = training_data.load(ctx.conn, dataset, config)
    except LeptonError:  # the dataset was deleted or no longer fits: check on synthetic
        return None
    x = data.x["test"][:CHECK_ROWS]
    if len(x) == 0 or tuple(x.shape[1:]) != tuple(version.params["spec"]["input_shape"]):
        return None
    rows = np.ascontiguousarray(x, dtype=np.float32)
    return CheckBatch(rows, f"{len(x)} test rows of {dataset.ref}")


def compare(
    what: str,
    got: Mapping[str, np.ndarray],
    expected: Mapping[str, np.ndarray],
    tolerance: Tolerance,
) -> float:
    """The largest absolute difference over all outputs.

    Raises:
        ExportMismatchError: an output is missing, has another shape, is not finite
            where the model's is, or differs beyond ``tolerance``; the message names
            the output and the difference.
    """
    worst = 0.0
    for name, want in expected.items():
        have = got.get(name)
        if have is None:
            raise ExportMismatchError(f"{what} has no output {name!r}; refused, nothing written")
        have = np.asarray(have, dtype=np.float64)
        if have.shape != want.shape:
            raise ExportMismatchError(
                f"{what}: output {name!r} has shape {list(have.shape)}, the model's "
                f"{list(want.shape)}; refused, nothing written"
            )
        if not np.isfinite(have).all():
            raise ExportMismatchError(
                f"{what}: output {name!r} holds NaN or infinite values; refused, nothing written"
            )
        diff = np.abs(have - want)
        limit = tolerance.atol + tolerance.rtol * np.abs(want)
        if (diff > limit).any():
            raise ExportMismatchError(
                f"{what} differs from the model: output {name!r} max abs diff "
                f"{float(diff.max()):.3g} > tolerance (atol {tolerance.atol:g}, rtol "
                f"{tolerance.rtol:g}); refused, nothing written"
            )
        worst = max(worst, float(diff.max(initial=0.0)))
    return worst


def check_runs(
    what: str,
    run: Callable[[np.ndarray], Mapping[str, np.ndarray]],
    reference: Predictor,
    batch: CheckBatch,
    tolerance: Tolerance,
) -> float:
    """Compare ``run`` (the exported file) with ``reference`` on the batch and on one row.

    One row as well, because an export traced with a fixed batch axis passes on the
    full batch and fails on any other size.

    Returns:
        The largest absolute difference.

    Raises:
        ExportMismatchError: the outputs differ beyond ``tolerance`` (see :func:`compare`).
    """
    from lepton_desktop.core.export.outputs import reference_outputs

    worst = 0.0
    for x in (batch.x, batch.x[:1]):
        worst = max(worst, compare(what, run(x), reference_outputs(reference, x), tolerance))
    return worst
