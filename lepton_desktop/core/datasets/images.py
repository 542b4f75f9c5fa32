"""Importing a folder of images, one sub-folder per class, as an image dataset.

Each image is read and fully decoded with Pillow before its row is written, so a
truncated or corrupt file is caught by name. Rows are streamed into the version in
small transactions; on any error (or a cancel) the unfinished version is discarded,
so nothing half-imported is ever seen. The encoded bytes are stored as they are
(PNG or JPEG, never re-encoded and never pickled) in the ``_image`` blob column, next
to ``path`` (relative to the folder), ``label`` (the sub-folder's name), ``width`` and
``height``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from lepton_desktop.core.datasets.columns import ColumnStats
from lepton_desktop.core.entities import DatasetVersion
from lepton_desktop.core.errors import DataImportError
from lepton_desktop.core.preprocessing.images import ImageDecodeError, decode_image
from lepton_desktop.core.progress import NullReporter, Reporter
from lepton_desktop.core.store import datasets as store

if TYPE_CHECKING:
    import sqlite3

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
#: Formats Pillow must recognise in the bytes (the suffix alone proves nothing).
IMAGE_FORMATS = ("PNG", "JPEG")
COLUMNS = (("path", "TEXT", "text"), ("label", "TEXT", "categorical"),
           ("width", "INTEGER", "numeric"), ("height", "INTEGER", "numeric"))
TARGET = "label"
#: Rows per insert transaction; also bounded by bytes so big photos keep memory flat.
_BATCH_ROWS = 256
_BATCH_BYTES = 32 << 20


@dataclasses.dataclass(frozen=True)
class ImageFile:
    """One image found in the folder, not yet read."""

    path: Path
    relative: str
    label: str


def find_images(folder: Path) -> list[ImageFile]:
    """List the images of every class sub-folder, in a stable (sorted) order.

    Hidden files and folders are skipped, as are files whose suffix is not an image
    suffix (notes, thumbnails databases). Class folders without images are skipped.

    Args:
        folder: the dataset folder, with one sub-folder per class.

    Returns:
        The images, sorted by class then by relative path.

    Raises:
        DataImportError: the folder has no class sub-folders, or they hold no images.
    """
    classes = [p for p in sorted(folder.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    if not classes:
        raise DataImportError(
            f"{folder}: no class sub-folders; an image dataset is a folder with one "
            "sub-folder per class (e.g. cats/, dogs/) holding .png or .jpg files"
        )
    found = [
        ImageFile(path, path.relative_to(folder).as_posix(), cls.name)
        for cls in classes
        for path in sorted(cls.rglob("*"))
        if _is_image_name(path, cls)
    ]
    if not found:
        names = ", ".join(c.name for c in classes[:5]) + (", ..." if len(classes) > 5 else "")
        raise DataImportError(
            f"{folder}: the class sub-folders ({names}) hold no .png, .jpg or .jpeg images"
        )
    return found


def _is_image_name(path: Path, class_folder: Path) -> bool:
    hidden = any(part.startswith(".") for part in path.relative_to(class_folder).parts)
    return not hidden and path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def read_image(file: Path) -> tuple[bytes, int, int]:
    """Read one image and decode it fully; return ``(encoded bytes, width, height)``.

    Raises:
        DataImportError: the file cannot be read or is not a complete PNG/JPEG image.
    """
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise DataImportError(f"{file}: cannot be read ({exc.strerror or exc})") from exc
    try:
        with decode_image(data) as img:
            kind = img.format
            width, height = img.size
    except ImageDecodeError as exc:
        raise DataImportError(f"{file}: {exc}") from exc
    if kind not in IMAGE_FORMATS:
        raise DataImportError(
            f"{file}: not a readable image ({kind} data; only PNG and JPEG are supported)"
        )
    return data, width, height


def import_images(
    conn: sqlite3.Connection,
    folder: Path,
    *,
    name: str,
    job_id: int | None = None,
    reporter: Reporter | None = None,
) -> DatasetVersion:
    """Import an image folder (one sub-folder per class) as a new version of ``name``.

    Args:
        conn: the project's connection.
        folder: the dataset folder.
        name: the dataset's name (an existing image dataset gets a new version).
        job_id: the job doing the import, so a dead worker's version can be cleaned up.
        reporter: receives progress once per file and may cancel.

    Returns:
        The new, ready version (target ``label``).

    Raises:
        DataImportError: no classes, no images, or an unreadable image (named); nothing
            is left in the project.
        CancelledError: the reporter asked to stop; nothing is left in the project.
    """
    reporter = reporter or NullReporter()
    if not folder.is_dir():
        raise DataImportError(
            f"{folder}: not a folder; give a folder with one sub-folder per class"
        )
    files = find_images(folder)
    version_id = store.begin_version(
        conn, name=name, kind="images", source=str(folder),
        sql_types=[sql for _, sql, _ in COLUMNS], job_id=job_id, with_image=True,
    )
    try:
        stats = _copy_images(conn, version_id, files, reporter)
        columns = [
            dataclasses.replace(s.to_column(i), dtype=COLUMNS[i][2]) for i, s in enumerate(stats)
        ]
        classes = sorted({f.label for f in files})
        return store.finish_version(
            conn, version_id, columns=columns, target=TARGET,
            operations=[{"op": "import", "source": str(folder), "kind": "images",
                         "classes": classes}],
        )
    except BaseException:
        store.discard_version(conn, version_id)
        raise


def _copy_images(
    conn: sqlite3.Connection, version_id: int, files: list[ImageFile], reporter: Reporter
) -> list[ColumnStats]:
    stats = [ColumnStats(col, dtype) for col, _, dtype in COLUMNS]
    width = len(COLUMNS) + 2  # the values, then _split and _image
    for batch in _batches(files, reporter):
        values = list(zip(*(row[:4] for row in batch), strict=True))
        for column, column_values in zip(stats, values, strict=True):
            column.add(pa.array(column_values))
        store.insert_rows(conn, version_id, width, batch)
    return stats


def _batches(files: list[ImageFile], reporter: Reporter) -> Iterator[list[tuple[object, ...]]]:
    batch: list[tuple[object, ...]] = []
    size = 0
    for done, file in enumerate(files, start=1):
        data, w, h = read_image(file.path)
        batch.append((file.relative, file.label, w, h, None, data))
        size += len(data)
        reporter.update(done, len(files), file.relative)
        if len(batch) >= _BATCH_ROWS or size >= _BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch
