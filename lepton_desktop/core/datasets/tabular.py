"""Streaming import of a table into a new dataset version.

Batches flow from the reader straight into SQLite (``executemany`` in short
transactions), so memory stays flat whatever the file's size. Column types come from
the first block; when a later block contradicts them (an integer column that turns
out to hold ``2.5``), the import starts over with that column widened.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lepton_desktop.core.datasets.columns import ColumnStats, storage_for
from lepton_desktop.core.datasets.pii import PiiCounter
from lepton_desktop.core.datasets.sources import TableSource, find_bad_encoding
from lepton_desktop.core.entities import Column, DatasetVersion
from lepton_desktop.core.errors import DataImportError
from lepton_desktop.core.progress import NullReporter, Reporter
from lepton_desktop.core.store import datasets as store

if TYPE_CHECKING:
    import sqlite3

_WIDEN = {"int": pa.float64(), "other": pa.string()}
_MAX_RESTARTS = 50


def import_table(
    conn: sqlite3.Connection,
    path: Path,
    *,
    name: str,
    kind: str = "tabular",
    target: str | None = None,
    time_column: str | None = None,
    job_id: int | None = None,
    reporter: Reporter | None = None,
) -> DatasetVersion:
    """Import a CSV, Parquet or .npz file as a new version of dataset ``name``.

    Raises:
        DataImportError: the file cannot be read; nothing is left in the project.
        CancelledError: the reporter asked to stop; nothing is left in the project.
    """
    reporter = reporter or NullReporter()
    column_types: dict[str, pa.DataType] = {}
    for _ in range(_MAX_RESTARTS):
        source = TableSource(path, column_types)
        try:
            if kind == "timeseries" and time_column is None:
                time_column = _guess_time_column(source.schema)
            _check_columns(source, target, time_column)
            return _import_once(conn, source, name, kind, target, time_column, job_id, reporter)
        except pa.ArrowInvalid as exc:
            column_types.update(_widened(source, exc))
        finally:
            source.close()
    raise DataImportError(f"{path}: column types keep changing; cannot import")


def check_table(
    path: Path, *, kind: str, target: str | None, time_column: str | None
) -> None:
    """Check a table's header and first rows (12 MB of a CSV) without importing anything.

    Raises:
        DataImportError: unreadable, too wide, a missing target or time column,
            duplicate names, or a problem in the first rows (a ragged row, bytes
            that are not UTF-8, an oversized row).
    """
    source = TableSource(path)
    try:
        if kind == "timeseries" and time_column is None:
            time_column = _guess_time_column(source.schema)
        _check_columns(source, target, time_column)
        with contextlib.suppress(pa.ArrowInvalid):
            # (a type that changes in a later block is widened by the import itself)
            for number, _ in enumerate(source.batches(), start=1):
                if number >= _CHECKED_BATCHES:
                    break
    finally:
        source.close()


#: How much of a source the check before an import parses: its first blocks (4 MB
#: each for a CSV), enough to meet a row too long for one.
_CHECKED_BATCHES = 3


def _guess_time_column(schema: pa.Schema) -> str:
    # The first date or timestamp column, else the first column (a year, an index).
    for field in schema:
        if pa.types.is_temporal(field.type):
            return str(field.name)
    return str(schema.names[0])


def _check_columns(source: TableSource, target: str | None, time_column: str | None) -> None:
    names = list(source.schema.names)
    store.check_width(len(names), str(source.path), DataImportError)
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise DataImportError(f"{source.path}: duplicate column names: {', '.join(dupes)}")
    for role, wanted in (("target", target), ("time", time_column)):
        if wanted is not None and wanted not in names:
            raise DataImportError(
                f"{source.path}: no {role} column {wanted!r}; the columns are: {', '.join(names)}"
            )
    for field in source.schema:
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            raise DataImportError(find_bad_encoding(source.path))


def _import_once(
    conn: sqlite3.Connection,
    source: TableSource,
    name: str,
    kind: str,
    target: str | None,
    time_column: str | None,
    job_id: int | None,
    reporter: Reporter,
) -> DatasetVersion:
    plans = [storage_for(f.type) for f in source.schema]
    stats = [
        ColumnStats(f.name, dtype) for f, (_, dtype) in zip(source.schema, plans, strict=True)
    ]
    version_id = store.begin_version(
        conn,
        name=name,
        kind=kind,
        source=str(source.path),
        sql_types=[sql for sql, _ in plans],
        job_id=job_id,
    )
    pii = [PiiCounter(f.name, f.type) for f in source.schema]
    try:
        rows = _copy_rows(conn, source, version_id, stats, pii, reporter)
        if rows == 0:
            raise DataImportError(f"{source.path}: the file has a header but no data rows")
        columns = [
            _with_pii(s.to_column(i), counter)
            for i, (s, counter) in enumerate(zip(stats, pii, strict=True))
        ]
        operation: dict[str, Any] = {"op": "import", "source": str(source.path), "kind": kind}
        if kind == "timeseries":
            operation |= _order_by_time(conn, version_id, columns, time_column)
        nonfinite = {s.name: s.nonfinite for s in stats if s.nonfinite}
        if nonfinite:
            operation["nonfinite"] = nonfinite
        return store.finish_version(
            conn,
            version_id,
            columns=columns,
            target=target,
            time_column=time_column,
            operations=[operation],
        )
    except BaseException:
        store.discard_version(conn, version_id)
        raise


def _copy_rows(
    conn: sqlite3.Connection,
    source: TableSource,
    version_id: int,
    stats: list[ColumnStats],
    pii: list[PiiCounter],
    reporter: Reporter,
) -> int:
    width = len(stats)
    rows = 0
    for batch in source.batches():
        arrays = []
        for column, counter, arr in zip(stats, pii, batch.columns, strict=True):
            counter.add(arr)  # every row: the first batch is the sample, the rest confirm
            finite, dropped = finite_only(arr)
            column.nonfinite += dropped
            column.add(finite)
            arrays.append(finite)
        store.insert_values(conn, version_id, width, _tuples(arrays))
        rows += batch.num_rows
        reporter.update(source.progress(rows), source.total, f"{rows:,} rows")
    return rows


def _with_pii(column: Column, counter: PiiCounter) -> Column:
    # Kept with the column's statistics: info, the Datasets tab, prep --pii and the
    # server's redaction all read it from there.
    finding = counter.finding()
    if finding is None:
        return column
    pii = {"kind": finding.kind, "share": round(finding.share, 4)}
    return dataclasses.replace(column, stats={**column.stats, "pii": pii})


def finite_only(arr: pa.Array) -> tuple[pa.Array, int]:
    """A float column with ``inf``, ``-inf`` and overflows (``1e309``) made missing.

    A number that is not finite is no measurement: stored, it would turn every mean,
    fill and scale of its column into Infinity or NaN. Returns the array (unchanged
    unless floating) and how many cells became missing.
    """
    if not pa.types.is_floating(arr.type) or len(arr) == 0:
        return arr, 0
    bad = pc.fill_null(pc.invert(pc.is_finite(arr)), False)
    dropped = int(pc.sum(bad).as_py() or 0)
    if dropped == 0:
        return arr, 0
    return pc.if_else(bad, pa.scalar(None, arr.type), arr), dropped


def _tuples(arrays: list[pa.Array]) -> Iterator[tuple[Any, ...]]:
    return zip(*[_python_values(arr) for arr in arrays], strict=True)


def _python_values(arr: pa.Array) -> list[Any]:
    kind = arr.type
    if pa.types.is_integer(kind) and arr.null_count == 0:
        return _numpy_view(arr).tolist()
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return _floats(arr).tolist()
    if pa.types.is_boolean(kind) or pa.types.is_temporal(kind) or pa.types.is_decimal(kind):
        return pc.cast(arr, pa.string()).to_pylist()
    return arr.to_pylist()


# Numbers are read from the Arrow buffers with numpy, never through Array.to_numpy(),
# pa.array() or pa.scalar(): those import pandas, half a second of every import job.
# numpy's tolist is far faster than to_pylist.


def _numpy_view(arr: pa.Array) -> np.ndarray:
    # Zero-copy view of a numeric array (values under nulls are whatever the buffer holds).
    dtype = np.dtype(arr.type.to_pandas_dtype())
    return np.frombuffer(
        arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize
    )


def _floats(arr: pa.Array) -> np.ndarray:
    # float64 with NaN for nulls: NaN binds as NULL in SQLite.
    floats = pc.cast(arr, pa.float64())
    values = _numpy_view(floats)
    if floats.null_count == 0:
        return values
    bits = np.frombuffer(floats.buffers()[0], dtype=np.uint8)
    valid = np.unpackbits(bits, count=floats.offset + len(floats), bitorder="little")
    return np.where(valid[floats.offset:].astype(bool), values, np.nan)


def _widened(source: TableSource, exc: pa.ArrowInvalid) -> dict[str, pa.DataType]:
    text = str(exc)
    if "UTF8" in text or "UTF-8" in text:
        raise DataImportError(find_bad_encoding(source.path)) from exc
    found = re.search(r"In CSV column #(\d+): CSV conversion error to (\w+)", text)
    if not found:
        raise DataImportError(f"{source.path}: {text}") from exc
    field = source.schema.field(int(found.group(1)))
    wider = _WIDEN["int"] if pa.types.is_integer(field.type) else _WIDEN["other"]
    return {field.name: wider}


def _order_by_time(
    conn: sqlite3.Connection, version_id: int, columns: list[Column], time_column: str | None
) -> dict[str, Any]:
    """Sort the rows by time; return what the import operation should record.

    A repeated timestamp is kept (it may be a real second reading) but recorded, so
    the import says so and training refuses to window over it.
    """
    if time_column is None:
        raise DataImportError("a time series needs a time column")
    time_col = next(c for c in columns if c.name == time_column)
    if time_col.stats.get("missing"):
        raise DataImportError(
            f"time column {time_column!r} has {time_col.stats['missing']} empty cells"
        )
    if not any(c.dtype == "numeric" for c in columns if c.name != time_column):
        raise DataImportError("a time series needs at least one numeric value column")
    store.sort_rows(conn, version_id, time_col)
    repeated, example = store.repeated_values(conn, version_id, time_col)
    found = {"column": time_col.name, "count": repeated, "example": example}
    return {"repeated_times": found} if repeated else {}
