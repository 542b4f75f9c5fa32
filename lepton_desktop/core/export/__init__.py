"""Exporting a model version: TorchScript, ONNX, a bundle, or a Triton repository.

:func:`export_model` is the one entry point (the ``export`` command and the
``export`` job call it). Every format is checked before it is kept: the written
file is run on a held-out batch and compared with the eager model (see
:mod:`~lepton_desktop.core.export.verify`); a file that answers differently is
refused and nothing appears at ``out``. An existing ``out`` is never overwritten.

What the exported graphs compute (TorchScript, ONNX, Triton) is described in
:mod:`~lepton_desktop.core.export.outputs`; bundles in
:mod:`~lepton_desktop.core.inference.bundle`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lepton_desktop.core.errors import InvalidOptionError
from lepton_desktop.core.export.files import (
    OutputExistsError,
    check_destination,
    file_sha256,
    staged,
)
from lepton_desktop.core.export.verify import CheckBatch, ExportMismatchError, Tolerance
from lepton_desktop.core.store import models as model_store

if TYPE_CHECKING:
    from collections.abc import Callable

    from lepton_desktop.core.context import ProjectContext
    from lepton_desktop.core.entities import ModelVersion
    from lepton_desktop.core.inference.predictor import Predictor
    from lepton_desktop.core.progress import Reporter

    #: write_torchscript / write_onnx: (model, batch, path, tolerance, reference) -> max diff
    _FileWriter = Callable[[Predictor, CheckBatch, Path, Tolerance, Predictor | None], float]

__all__ = ["FORMATS", "ExportMismatchError", "ExportResult", "OutputExistsError", "export_model"]

FORMATS = ("torchscript", "onnx", "bundle", "triton")
#: The usual file name ending of each format (a directory for triton).
SUFFIXES = {"torchscript": ".pt", "onnx": ".onnx", "bundle": ".zip", "triton": ""}


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What an export wrote and how it was checked.

    Attributes:
        path: the file (or, for triton, the repository directory) written.
        format: torchscript, onnx, bundle or triton.
        model: the exported version, ``name:version``.
        max_abs_diff: the largest difference between the file's outputs and the
            eager model's on the check batch.
        checked_on: which batch that was (test rows of the dataset, or synthetic).
        files: every file written, absolute paths.
        bytes: their total size.
        sha256: the file's SHA-256 (single-file formats), to check a copy against.
        notes: anything the user should know (e.g. a bundle without model.onnx).
    """

    path: Path
    format: str
    model: str
    max_abs_diff: float
    checked_on: str
    files: tuple[Path, ...]
    bytes: int
    sha256: str | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the ``--json`` output and the job result)."""
        return {
            "path": str(self.path),
            "format": self.format,
            "model": self.model,
            "max_abs_diff": self.max_abs_diff,
            "checked_on": self.checked_on,
            "files": [str(f) for f in self.files],
            "bytes": self.bytes,
            "sha256": self.sha256,
            "notes": list(self.notes),
        }


@dataclasses.dataclass
class _Export:
    """One export in progress: the loaded model, its check batch, the options."""

    ctx: ProjectContext
    version: ModelVersion
    predictor: Predictor
    batch: CheckBatch
    tolerance: Tolerance
    reporter: Reporter
    reference: Predictor
    notes: list[str] = dataclasses.field(default_factory=list)

    def step(self, done: int, message: str) -> None:
        self.reporter.update(done, 4, message)


def export_model(
    ctx: ProjectContext,
    ref: str,
    format: str,
    out: Path | str,
    reporter: Reporter | None = None,
    *,
    tolerance: Tolerance | None = None,
    reference: str | None = None,
) -> ExportResult:
    """Export model version ``ref`` (``name``, ``name:N``, ``name@alias``) to ``out``.

    Args:
        ctx: the open project.
        ref: the model version.
        format: one of :data:`FORMATS`.
        out: the file to write (triton: the model repository directory, new or
            existing; the model goes into ``out/NAME``).
        reporter: progress, and cancellation between steps.
        tolerance: how far the file's outputs may be from the model's.
        reference: check the file against this version's outputs instead of ``ref``'s
            (how the tests prove that a file computing something else is refused).

    Raises:
        InvalidOptionError: an unknown format; ``out`` exists (OutputExistsError), or
            its directory is missing or not writable.
        NotFoundError: no such model version.
        ExportMismatchError: the exported file computes something else (not kept).
        LeptonError: the disk refused the write.
        CancelledError: the reporter asked to stop (nothing kept).
    """
    from lepton_desktop.core.export.verify import check_batch
    from lepton_desktop.core.inference.predictor import ModelParts, Predictor
    from lepton_desktop.core.progress import NullReporter

    if format not in FORMATS:
        raise InvalidOptionError(
            f"unknown export format {format!r}; use one of {', '.join(FORMATS)}"
        )
    version = model_store.resolve(ctx.conn, ref)
    out = Path(out).expanduser().absolute()
    target = _triton_target(out, version.name) if format == "triton" else out
    check_destination(target)
    reporter = reporter or NullReporter()
    reporter.update(0, 4, f"loading {version.ref}")
    predictor = Predictor(ModelParts.from_project(ctx, version.ref))
    batch = check_batch(ctx, version)
    if reference is not None:
        check_against = Predictor(ModelParts.from_project(ctx, reference))
    else:
        check_against = predictor
    job = _Export(
        ctx, version, predictor, batch, tolerance or Tolerance(), reporter, check_against
    )
    writer = {"torchscript": _torchscript, "onnx": _onnx, "bundle": _bundle, "triton": _triton}
    result = writer[format](job, out, target)
    job.step(4, f"wrote {result.path}")
    return result


def _result(
    job: _Export, format: str, path: Path, diff: float, files: list[Path], single: bool = True
) -> ExportResult:
    return ExportResult(
        path=path,
        format=format,
        model=job.version.ref,
        max_abs_diff=diff,
        checked_on=job.batch.source,
        files=tuple(files),
        bytes=sum(f.stat().st_size for f in files),
        sha256=file_sha256(path) if single else None,
        notes=tuple(job.notes),
    )


def _torchscript(job: _Export, out: Path, target: Path) -> ExportResult:
    from lepton_desktop.core.export.torchscript import write_torchscript

    return _single_file(job, out, "torchscript", "tracing", write_torchscript)


def _onnx(job: _Export, out: Path, target: Path) -> ExportResult:
    from lepton_desktop.core.export.onnx_model import write_onnx

    message = "exporting to ONNX and checking in onnxruntime"
    return _single_file(job, out, "onnx", message, write_onnx)


def _single_file(
    job: _Export, out: Path, format: str, message: str, write: _FileWriter
) -> ExportResult:
    """Write one file with ``write`` (which checks it) beside ``out``, then move it there."""
    with staged(out) as temporary:
        job.step(1, message)
        diff = write(job.predictor, job.batch, temporary, job.tolerance, job.reference)
        job.step(3, f"checked on {job.batch.source}")
    return _result(job, format, out, diff, [out])


def _bundle(job: _Export, out: Path, target: Path) -> ExportResult:
    from lepton_desktop.core.export.card import lineage, model_card
    from lepton_desktop.core.export.outputs import reference_outputs
    from lepton_desktop.core.export.verify import compare
    from lepton_desktop.core.inference import bundle
    from lepton_desktop.core.inference.predictor import Predictor

    parts = job.predictor.parts
    job.step(1, "exporting model.onnx for the bundle")
    entries = {bundle.WEIGHTS: parts.weights}
    onnx_model = _optional_onnx(job)
    if onnx_model is not None:
        entries[bundle.ONNX] = onnx_model
    story = lineage(job.ctx, job.version) | {"exported_at": time.time()}
    entries[bundle.MODEL_JSON] = json.dumps(bundle.model_document(parts, story), indent=2).encode()
    entries[bundle.CARD] = model_card(parts, story, list(entries)).encode()
    with staged(out) as temporary:
        job.step(2, "writing the bundle")
        bundle.write_bundle(temporary, [(parts, entries)])
        job.step(3, "reading the bundle back")
        (read,) = bundle.read_bundle(temporary)
        x = job.batch.x
        got = reference_outputs(Predictor(read), x)
        diff = compare(
            "the bundle's model", got, reference_outputs(job.reference, x), job.tolerance
        )
    return _result(job, "bundle", out, diff, [out])


def _optional_onnx(job: _Export) -> bytes | None:
    # A bundle is served by Lepton from its weights; model.onnx is a convenience for
    # other runtimes, so a model torch cannot express in ONNX still gets a bundle.
    from lepton_desktop.core.export.onnx_model import OnnxExportError, check_onnx, onnx_bytes

    try:
        model = onnx_bytes(job.predictor, job.batch.example)
        check_onnx(model, job.reference, job.batch, job.tolerance)
    except (OnnxExportError, ExportMismatchError) as exc:
        job.notes.append(f"no model.onnx in the bundle: {exc}")
        return None
    return model


def _triton_target(out: Path, name: str) -> Path:
    from lepton_desktop.core.export.triton import triton_name

    if out.is_dir():
        return out / triton_name(name)  # add the model to an existing repository
    return out


def _triton(job: _Export, out: Path, target: Path) -> ExportResult:
    from lepton_desktop.core.export.onnx_model import check_onnx, onnx_bytes
    from lepton_desktop.core.export.triton import triton_name, write_model_directory

    name = triton_name(job.version.name)
    job.step(1, "exporting to ONNX and checking in onnxruntime")
    model = onnx_bytes(job.predictor, job.batch.example)
    diff = check_onnx(model, job.reference, job.batch, job.tolerance)
    with staged(target, directory=True) as temporary:
        job.step(3, "writing the model repository")
        folder = temporary if target != out else temporary / name
        written = write_model_directory(folder, job.predictor, model, name)
        final = [target / f.relative_to(temporary) for f in written]
    return _result(job, "triton", out, diff, final, single=False)
