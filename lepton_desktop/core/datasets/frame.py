"""A dataset version held in memory, column-wise, for preparation.

Preparation needs whole columns (duplicates, means, a stratified split), so a version
is loaded into numpy arrays: fine up to a few million rows in a worker process. The
column representation is the one :mod:`~lepton_desktop.core.preprocessing.tabular` uses
(numeric ``float64`` with NaN, other columns ``object`` with ``None``), so prep and
serving run the same transformation code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from lepton_desktop.core.entities import Column, DatasetVersion
from lepton_desktop.core.preprocessing.tabular import Columns, missing_mask
from lepton_desktop.core.progress import Reporter
from lepton_desktop.core.store import datasets as store

if TYPE_CHECKING:
    import sqlite3

#: Rows per read or write batch (one short transaction each when writing).
BATCH_ROWS = 20_000
#: Split code for rows that are in no split (NULL in the table).
NO_SPLIT = -1
#: Column statistics a prepared version keeps from its parent.
_CARRIED = ("onehot", "pii", "pii_treated")


@dataclasses.dataclass
class Frame:
    """Rows of a version, column by column.

    Attributes:
        columns: name -> values, in the version's column order.
        dtypes: name -> numeric | categorical | text | datetime.
        split: per row 0 train, 1 val, 2 test or ``NO_SPLIT``.
        rows: per row its 0-based index in the source version (to copy image blobs).
        extra: name -> statistics to carry over (e.g. ``{"onehot": "color"}``).
    """

    columns: Columns
    dtypes: dict[str, str]
    split: np.ndarray
    rows: np.ndarray
    extra: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.split)

    def take(self, keep: np.ndarray) -> Frame:
        """The rows where the boolean mask ``keep`` is true."""
        return Frame({k: v[keep] for k, v in self.columns.items()}, dict(self.dtypes),
                     self.split[keep], self.rows[keep], dict(self.extra))

    def missing(self) -> int:
        """How many cells are missing, over all columns."""
        return int(sum(missing_mask(v).sum() for v in self.columns.values()))

    def has_split(self) -> bool:
        """True when any row belongs to a split."""
        return bool((self.split != NO_SPLIT).any())


def load_frame(conn: sqlite3.Connection, version: DatasetVersion, reporter: Reporter) -> Frame:
    """Read every row of ``version`` (not image blobs) into a Frame.

    Raises:
        CancelledError: the reporter asked to stop (nothing has been written).
    """
    chunks: list[list[np.ndarray]] = [[] for _ in version.columns]
    splits: list[np.ndarray] = []
    done = 0
    for batch in store.iter_batches(conn, version, BATCH_ROWS):
        cells = list(zip(*batch, strict=True))
        for chunk, column, values in zip(chunks, version.columns, cells, strict=False):
            chunk.append(_array(values, column.dtype == "numeric"))
        splits.append(np.array([NO_SPLIT if s is None else s for s in cells[-1]], dtype=np.int8))
        done += len(batch)
        reporter.update(done, version.n_rows, "reading rows")
    columns = {
        c.name: _concat(chunk, c.dtype == "numeric")
        for c, chunk in zip(version.columns, chunks, strict=True)
    }
    split = np.concatenate(splits) if splits else np.empty(0, dtype=np.int8)
    # Carried to the new version: one-hot origins, and personal data found or treated.
    extra = {c.name: {k: c.stats[k] for k in _CARRIED if k in c.stats} for c in version.columns}
    extra = {name: stats for name, stats in extra.items() if stats}
    return Frame(columns, {c.name: c.dtype for c in version.columns}, split,
                 np.arange(len(split)), extra)


def exact_column(conn: sqlite3.Connection, version: DatasetVersion, name: str) -> np.ndarray:
    """One column's values exactly as stored (``object``): a 16-digit number stays whole.

    A frame reads numbers as float64, which rounds integers beyond 2**53 (a card
    number, an account): hashing or masking one needs its every digit.
    """
    position = version.column(name).position
    values: list[Any] = []
    for batch in store.iter_batches(conn, version, BATCH_ROWS):
        values += [row[position] for row in batch]
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _array(values: tuple[Any, ...], numeric: bool) -> np.ndarray:
    if numeric:
        return np.fromiter((math.nan if v is None else v for v in values), np.float64, len(values))
    return np.array([None if v is None else str(v) for v in values], dtype=object)


def _concat(chunks: list[np.ndarray], numeric: bool) -> np.ndarray:
    if not chunks:
        return np.empty(0, dtype=np.float64 if numeric else object)
    values = np.concatenate(chunks)
    if numeric:
        # Projects imported before non-finite values were made missing may hold them.
        values[~np.isfinite(values)] = np.nan
    return values


def duplicated_rows(frame: Frame) -> np.ndarray:
    """Mask of rows equal (in every column) to an earlier row; missing equals missing."""
    if not frame.columns or len(frame) == 0:
        return np.zeros(len(frame), dtype=bool)
    import pandas as pd  # only here: its import costs more than a short training run

    table = pd.DataFrame(dict(enumerate(frame.columns.values())))
    return table.duplicated(keep="first").to_numpy(dtype=bool)


def duplicated_images(conn: sqlite3.Connection, version: DatasetVersion) -> np.ndarray:
    """Mask of image rows whose encoded bytes equal an earlier row's."""
    seen: set[bytes] = set()
    flags: list[bool] = []
    for blobs in store.iter_images(conn, version):
        for blob in blobs:
            digest = hashlib.sha256(blob).digest()
            flags.append(digest in seen)
            seen.add(digest)
    return np.array(flags, dtype=bool)


# -- writing ---------------------------------------------------------------------------


def write_frame(
    conn: sqlite3.Connection,
    parent: DatasetVersion,
    frame: Frame,
    *,
    operations: list[dict[str, Any]],
    pipeline: list[dict[str, Any]],
    job_id: int | None,
    reporter: Reporter,
) -> DatasetVersion:
    """Write ``frame`` as a new version of ``parent``'s dataset (child of ``parent``).

    Image datasets copy their rows (blobs included) inside SQLite, from ``frame.rows``.
    Any error or cancel discards the unfinished version.

    Raises:
        CancelledError: the reporter asked to stop; nothing is left in the project.
    """
    images = parent.kind == "images"
    version_id = store.begin_version(
        conn, name=parent.name, kind=parent.kind, source=parent.ref,
        sql_types=[_sql_type(v) for v in frame.columns.values()], parent_id=parent.id,
        job_id=job_id, with_image=images,
    )
    try:
        for done, batch in _batches(frame, parent if images else None):
            if images:
                store.copy_rows(conn, parent, version_id, batch)
            else:
                store.insert_rows(conn, version_id, len(frame.columns) + 1, batch)
            reporter.update(done, len(frame), "writing rows")
        return store.finish_version(
            conn, version_id, columns=frame_columns(frame), target=parent.target,
            time_column=parent.time_column, operations=operations, pipeline=pipeline,
        )
    except BaseException:
        store.discard_version(conn, version_id)
        raise


def _batches(
    frame: Frame, image_source: DatasetVersion | None
) -> Iterator[tuple[int, list[tuple[Any, ...]]]]:
    splits = [None if s == NO_SPLIT else int(s) for s in frame.split]
    for start in range(0, len(frame), BATCH_ROWS):
        stop = min(start + BATCH_ROWS, len(frame))
        if image_source is not None:
            yield stop, list(zip(frame.rows[start:stop].tolist(), splits[start:stop],
                                 strict=True))
            continue
        cells = [_python(v[start:stop]) for v in frame.columns.values()]
        yield stop, list(zip(*cells, splits[start:stop], strict=True))


def _python(values: np.ndarray) -> list[Any]:
    # NaN binds as NULL in SQLite; integral floats land as integers in INTEGER columns.
    return values.tolist()


def _sql_type(values: np.ndarray) -> str:
    if values.dtype.kind != "f":
        return "TEXT"
    return "INTEGER" if _whole_numbers(values) else "REAL"


def _whole_numbers(values: np.ndarray) -> bool:
    # Whole numbers small enough to be integers exactly (1e300 is "integral" as a
    # float, but no int64 holds it: such a column stays REAL).
    present = values[~np.isnan(values)]
    return present.size > 0 and bool(
        np.all(present == np.round(present)) and np.all(np.abs(present) < 2**53)
    )


def frame_columns(frame: Frame) -> list[Column]:
    """Column metadata (dtype and statistics) of every column of ``frame``."""
    return [
        _column(i, name, frame.dtypes[name], values, frame.extra.get(name, {}))
        for i, (name, values) in enumerate(frame.columns.items())
    ]


def _column(
    position: int, name: str, dtype: str, values: np.ndarray, extra: dict[str, Any]
) -> Column:
    # Imported here: reading a frame to train on needs neither (pyarrow costs ~0.4 s).
    import pyarrow as pa

    from lepton_desktop.core.datasets.columns import ColumnStats

    stats = ColumnStats(name, dtype)
    if values.dtype.kind == "f":
        array = pa.array(values, from_pandas=True)
        whole = _whole_numbers(values) and array.null_count == 0
        stats.add(array.cast(pa.int64()) if whole else array)
    else:
        stats.add(pa.array(list(values), type=pa.string()))
    column = stats.to_column(position)
    # The dtype is the parent's: a shorter column must not turn text into categorical.
    return dataclasses.replace(column, dtype=dtype, stats={**column.stats, **extra})
