"""Choosing how to import a source: a table, a time series, or an image folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lepton_desktop.core.datasets.formats import TABULAR_SUFFIXES
from lepton_desktop.core.entities import DATASET_KINDS, DatasetVersion
from lepton_desktop.core.errors import DataImportError, InvalidOptionError
from lepton_desktop.core.names import check_name
from lepton_desktop.core.progress import Reporter
from lepton_desktop.core.store import datasets as dataset_store

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


def check_import(
    conn: sqlite3.Connection,
    source: Path,
    *,
    name: str,
    kind: str | None = None,
    target: str | None = None,
    time_column: str | None = None,
) -> None:
    """Refuse an import that cannot succeed, before a job is queued for it.

    Everything that can be known without reading the whole source is checked here:
    the name, the source's existence and kind, an image folder's classes, a table's
    header (columns, target, time column, width) and the first block of its rows.
    A refused import then leaves the project file byte for byte as it was. (A
    problem further into a large file, a ragged row at line 10,000,000, is still
    found by the import itself, which then keeps nothing.)

    Raises:
        DataImportError: the source cannot be imported; the message names the file.
        InvalidOptionError: a bad name or kind, or a name taken by another kind.
    """
    check_name(name, "dataset name")
    if not source.exists():
        raise DataImportError(f"{source}: no such file or folder")
    kind = kind or guess_kind(source)
    if kind not in DATASET_KINDS:
        raise InvalidOptionError(f"unknown kind {kind!r}; use one of {', '.join(DATASET_KINDS)}")
    dataset_store.check_kind(conn, name, kind)
    if kind == "images":
        from lepton_desktop.core.datasets.images import find_images

        _check_image_folder(source)
        find_images(source)
        return
    from lepton_desktop.core.datasets.tabular import check_table

    check_table(source, kind=kind, target=target, time_column=time_column)


def _check_image_folder(source: Path) -> None:
    if not source.is_dir():
        raise DataImportError(
            f"{source}: an image dataset is a folder with one sub-folder per class"
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
    check_name(name, "dataset name")
    if not source.exists():
        raise DataImportError(f"{source}: no such file or folder")
    kind = kind or guess_kind(source)
    if kind not in DATASET_KINDS:
        raise InvalidOptionError(f"unknown kind {kind!r}; use one of {', '.join(DATASET_KINDS)}")
    if kind == "images":
        from lepton_desktop.core.datasets.images import import_images

        _check_image_folder(source)
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
