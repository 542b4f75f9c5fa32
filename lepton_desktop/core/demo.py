"""The demo project: every kind of dataset, built from the bundled sample data.

The project is built in a hidden temporary file next to the destination and renamed
into place only when complete, so a failed or killed build never leaves a half
project where the user (or the GUI) would open it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from lepton_desktop.core.datasets.prep import PrepOptions
from lepton_desktop.core.errors import InvalidOptionError, LeptonError, ProjectExistsError
from lepton_desktop.core.progress import NullReporter, Reporter
from lepton_desktop.core.project import Project
from lepton_desktop.paths import sample_data_dir

#: A partial build untouched for this long (seconds) was killed; it may be removed.
STALE_PARTIAL_S = 600.0


@dataclasses.dataclass(frozen=True)
class _Step:
    message: str
    run: Callable[[Project, Path], object]


def _steps() -> list[_Step]:
    split = (0.7, 0.15, 0.15)
    iris_prep = PrepOptions(dedupe=True, fill="mean", scale="standard", split=split, seed=0)
    return [
        _Step("iris", lambda p, d: p.import_dataset(d / "iris.csv", "iris", target="species")),
        _Step("iris: prepared", lambda p, d: p.prep("iris", iris_prep)),
        _Step("digits", lambda p, d: p.import_dataset(d / "digits", "digits", kind="images")),
        _Step("digits: split", lambda p, d: p.prep("digits", PrepOptions(split=split, seed=0))),
        _Step("nile", lambda p, d: p.import_dataset(
            d / "nile.csv", "nile", kind="timeseries", target="volume", time_column="year")),
        _Step("diabetes", lambda p, d: p.import_dataset(
            d / "diabetes.csv", "diabetes", target="progression")),
    ]


def create_demo(
    path: Path, reporter: Reporter | None = None, *, sample_data: Path | None = None
) -> None:
    """Build the demo project at ``path`` from the bundled sample data.

    It holds ``iris`` (tabular, target ``species``) and a prepared version (dedupe,
    fill mean, standard scaling, split 0.7/0.15/0.15, seed 0), ``digits`` (images)
    and a split version, ``nile`` (yearly time series) and ``diabetes`` (tabular
    regression, target ``progression``).

    Args:
        path: where the project goes; its folder is created if needed.
        reporter: receives one update per dataset step and may cancel.
        sample_data: the sample data folder (default: the bundled one).

    Raises:
        ProjectExistsError: ``path`` already exists (it is left alone).
        LeptonError: the sample data cannot be imported; nothing is left at ``path``.
        CancelledError: the reporter asked to stop; nothing is left at ``path``.
    """
    path = Path(path)
    if path.exists():
        raise ProjectExistsError(f"{path}: already exists; open it or choose another name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidOptionError(f"{path.parent}: cannot create the folder ({exc})") from exc
    _remove_stale_partials(path)
    reporter = reporter or NullReporter()
    data = sample_data or sample_data_dir()
    # Same folder as the destination, so the final rename is atomic (same file system).
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        _build(partial, data, reporter)
        if path.exists():  # created meanwhile by someone else: never overwrite it
            raise ProjectExistsError(f"{path}: already exists; open it or choose another name")
        os.replace(partial, path)
    finally:
        _remove(partial)


def _build(partial: Path, data: Path, reporter: Reporter) -> None:
    steps = _steps()
    with Project.create(partial) as project:
        for done, step in enumerate(steps):
            reporter.update(done, len(steps), step.message)
            step.run(project, data)
        reporter.update(len(steps), len(steps), "done")
    # Closing the last connection checkpoints the WAL into the file. A WAL with data
    # left beside it would not travel with the rename, so refuse rather than lose it.
    wal = partial.with_name(partial.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise LeptonError(f"{partial}: the project could not be checkpointed; try again")


def _remove_stale_partials(path: Path) -> None:
    # A build killed outright (the GUI's Cancel kills the process) cannot clean up
    # after itself; the next build does, sparing any that may still be running.
    for partial in path.parent.glob(f".{glob.escape(path.name)}.*.partial"):
        with contextlib.suppress(OSError):
            if time.time() - partial.stat().st_mtime > STALE_PARTIAL_S:
                _remove(partial)


def _remove(partial: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    _remove_sidecars(partial)


def _remove_sidecars(partial: Path) -> None:
    for suffix in ("-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            partial.with_name(partial.name + suffix).unlink()
