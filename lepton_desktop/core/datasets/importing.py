"""Choosing how to import a source: a table, a time series, or an image folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lepton_desktop.core.datasets.sources import TABULAR_SUFFIXES
from lepton_desktop.core.entities import DATASET_KINDS, DatasetVersion
from lepton_desktop.core.errors import DataImportError, InvalidOptionError
from lepton_desktop.core.progress import Reporter

if TYPE_CHECKING:
    import sqlite3


def guess_kind(source: Path) -> str:
    """``images`` for a folder, ``tabular`` for a table file (time series are asked for)."""
    if source.is_dir():
        return "images"
    if source.suffix.lower() in TABULAR_SUFFIXES:
        return "tabular"
    raise DataImportError(
        f"{source}: unknown kind of source; give a .csv, .tsv, .parquet or .npz file, "
        "or a folder of images with one sub-folder per class"
    )


def import_source(
    conn: sqlite3.Connection,
    source: Path,
    *,
    name: str,
    kind: str | None = None,
    target: str | None = None,
    time_column: str | None = None,
    job_id: int | None = None,
    reporter: Reporter | None = None,
) -> DatasetVersion:
    """Import ``source`` as a new version of dataset ``name``; see Project.import_dataset."""
    if not source.exists():
        raise DataImportError(f"{source}: no such file or folder")
    kind = kind or guess_kind(source)
    if kind not in DATASET_KINDS:
        raise InvalidOptionError(f"unknown kind {kind!r}; use one of {', '.join(DATASET_KINDS)}")
    if kind == "images":
        from lepton_desktop.core.datasets.images import import_images

        if not source.is_dir():
            raise DataImportError(
                f"{source}: an image dataset is a folder with one sub-folder per class"
            )
        return import_images(conn, source, name=name, job_id=job_id, reporter=reporter)
    from lepton_desktop.core.datasets.tabular import import_table

    return import_table(
        conn,
        source,
        name=name,
        kind=kind,
        target=target,
        time_column=time_column,
        job_id=job_id,
        reporter=reporter,
    )
