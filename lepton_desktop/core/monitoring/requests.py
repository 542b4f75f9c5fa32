"""The request log as a user browses it: filtered pages, export, retention, deletion.

Reads are keyset pages of the log (:mod:`lepton_desktop.core.store.request_log`), so
a filter over ten million rows shows its first page as fast as over ten. An export
walks the selection in chunks of :data:`EXPORT_CHUNK` rows and writes each before
reading the next (CSV with the standard library, Parquet with pyarrow's writer, one
row group per chunk), so its memory is one chunk whatever the selection's size; it is
written under a temporary name and renamed at the end, and never replaces a file.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import math
import os
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lepton_desktop.core.errors import InvalidOptionError
from lepton_desktop.core.progress import NullReporter, Reporter
from lepton_desktop.core.store import request_log as log_store
from lepton_desktop.core.store.request_log import STATUS_CLASSES, RequestFilter

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext
    from lepton_desktop.core.entities import RequestRecord

__all__ = ["RequestFilter", "RequestLog", "Retention", "parse_retention", "parse_status"]

#: Rows read and written at a time by an export, and deleted per transaction by retention.
EXPORT_CHUNK = 5000
RETENTION_BATCH = 5000
#: A page of the browser holds at most this many rows.
MAX_PAGE = 10_000
#: Counting matches stops here (the GUI shows "10,000+").
COUNT_CAP = 10_000
#: The exported columns, in order: the stored fields (inputs and outputs as JSON text)
#: and the labels sent back for the request (JSON: row -> label), if any.
EXPORT_COLUMNS = ("id", "deployment_id", "ts", "time", "request_id", "method", "path",
                  "protocol", "model", "version", "status", "latency_ms", "n_rows",
                  "inputs", "outputs", "error", "labels")  # fmt: skip
EXPORT_FORMATS = ("csv", "parquet")


@dataclasses.dataclass(frozen=True)
class Retention:
    """How long the request log keeps rows: ``days`` and/or the newest ``rows``."""

    days: float | None = None
    rows: int | None = None

    @property
    def limited(self) -> bool:
        """Whether anything is ever deleted."""
        return self.days is not None or self.rows is not None

    def label(self) -> str:
        """``30d``, ``1000000rows``, both joined by ``+``, or ``keep all``."""
        parts = []
        if self.days is not None:
            parts.append(f"{self.days:g}d")
        if self.rows is not None:
            parts.append(f"{self.rows}rows")
        return "+".join(parts) or "keep all"


_RETENTION_PART = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(d|days?|rows?)\s*$")
#: Bounds of a retention: a day's fraction would delete what a server just logged.
MIN_DAYS, MAX_DAYS = 1.0, 36_500.0
MIN_ROWS, MAX_ROWS = 1_000, 10_000_000_000


def parse_retention(text: str) -> Retention:
    """``30d``, ``1000000rows``, ``30d+1000000rows`` (both limits) or ``off``.

    Raises:
        InvalidOptionError: anything else, or a limit out of bounds (named).
    """
    if text.strip().lower() in ("off", "none", "all", "keep all"):
        return Retention()
    days: float | None = None
    rows: int | None = None
    for part in text.split("+"):
        match = _RETENTION_PART.match(part.lower())
        if not match:
            raise InvalidOptionError(
                f"--retention {text!r}: give days (30d), rows (1000000rows), both "
                "(30d+1000000rows) or off"
            )
        number, unit = float(match.group(1)), match.group(2)
        if unit.startswith("d"):
            if not MIN_DAYS <= number <= MAX_DAYS:
                raise InvalidOptionError(
                    f"--retention {text!r}: days must be {MIN_DAYS:g} to {MAX_DAYS:g}"
                )
            days = number
        else:
            if number != int(number) or not MIN_ROWS <= number <= MAX_ROWS:
                raise InvalidOptionError(
                    f"--retention {text!r}: rows must be a whole number from {MIN_ROWS:,} "
                    f"to {MAX_ROWS:,}"
                )
            rows = int(number)
    return Retention(days, rows)


def parse_status(text: str | None) -> int | str | None:
    """``200``, ``2xx``, ``4xx``, ``5xx`` or ``error`` (4xx and 5xx).

    Raises:
        InvalidOptionError: anything else.
    """
    if text is None:
        return None
    if text in STATUS_CLASSES:
        return text
    if text.isdigit() and 100 <= int(text) <= 599:
        return int(text)
    raise InvalidOptionError(
        f"--status {text!r}: give a status code (404) or {', '.join(STATUS_CLASSES)}"
    )


class RequestLog:
    """The project's request log (``project.request_log``).

    Args:
        ctx: the project (its connection reads and writes).
    """

    def __init__(self, ctx: ProjectContext) -> None:
        self.ctx = ctx

    # -- reading -------------------------------------------------------------------

    def page(
        self, flt: RequestFilter, before_id: int | None = None, limit: int = 100
    ) -> list[RequestRecord]:
        """The newest ``limit`` matching requests below id ``before_id``, newest first.

        Raises:
            InvalidOptionError: ``limit`` outside 1..:data:`MAX_PAGE`.
        """
        _check_filter(flt)
        if isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE:
            raise InvalidOptionError(f"--limit {limit}: give a number from 1 to {MAX_PAGE:,}")
        return log_store.page(self.ctx.conn, flt, before_id, limit)

    def count(self, flt: RequestFilter, cap: int = COUNT_CAP) -> int:
        """How many requests match (counted up to ``cap``)."""
        _check_filter(flt)
        return log_store.count(self.ctx.conn, flt, cap)

    def chunks(self, flt: RequestFilter, limit: int | None = None,
               chunk: int = EXPORT_CHUNK) -> Iterator[list[RequestRecord]]:  # fmt: skip
        """The matching requests, oldest first, ``chunk`` at a time (at most ``limit``)."""
        _check_filter(flt)
        return log_store.chunks(self.ctx.conn, flt, chunk, limit)

    # -- export --------------------------------------------------------------------

    def export(
        self, flt: RequestFilter, out: Path | str, reporter: Reporter | None = None
    ) -> dict[str, Any]:
        """Write the matching requests to ``out`` (``.csv`` or ``.parquet``), oldest first.

        Returns ``{path, format, rows, bytes, columns}``.

        Raises:
            InvalidOptionError: ``out`` is a folder, exists, has another suffix, or its
                folder does not exist (nothing is written).
        """
        _check_filter(flt)
        path = Path(out)
        fmt = check_export_path(path)
        reporter = reporter or NullReporter()
        total = log_store.count(self.ctx.conn, flt, cap=10**12)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        try:
            with open(partial, "xb") as handle:
                writer = _CsvWriter(handle) if fmt == "csv" else _ParquetWriter(handle)
                written = 0
                for chunk in log_store.raw_chunks(self.ctx.conn, flt, EXPORT_CHUNK):
                    writer.write([_export_row(row) for row in chunk])
                    written += len(chunk)
                    reporter.update(written, total, f"{written:,} of {total:,} requests")
                writer.close()
            if path.exists():
                raise InvalidOptionError(f"{path} appeared while exporting; not replaced")
            os.replace(partial, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
        return {"path": str(path), "format": fmt, "rows": written,
                "bytes": path.stat().st_size, "columns": list(EXPORT_COLUMNS)}  # fmt: skip

    # -- retention -----------------------------------------------------------------

    def retention(self) -> Retention:
        """The project's retention setting."""
        days, rows = log_store.retention(self.ctx.conn)
        return Retention(days, rows)

    def set_retention(self, retention: Retention | str) -> Retention:
        """Store the setting (a :class:`Retention` or its text, see
        :func:`parse_retention`); it is applied by :meth:`apply_retention`."""
        if isinstance(retention, str):
            retention = parse_retention(retention)
        log_store.set_retention(self.ctx.conn, retention.days, retention.rows)
        return retention

    def apply_retention(
        self, *, batch: int = RETENTION_BATCH, budget_s: float | None = None,
        now: float | None = None,
    ) -> int:  # fmt: skip
        """Delete the requests the setting no longer keeps, ``batch`` rows per
        transaction (a server's writer gets the file between two), oldest first, for
        at most ``budget_s`` seconds (None: until done). Rollups, drift sketches,
        anomaly flags and feedback stay: the Monitoring tab's history is unchanged.
        Returns the rows deleted."""
        setting = self.retention()
        if not setting.limited:
            return 0
        now = time.time() if now is None else now
        before = now - setting.days * 86400 if setting.days is not None else None
        cutoff = log_store.retention_cutoff(self.ctx.conn, before, setting.rows)
        started, deleted = time.monotonic(), 0
        while budget_s is None or time.monotonic() - started < budget_s:
            gone = log_store.delete_batch(self.ctx.conn, cutoff, batch)
            deleted += gone
            if gone < batch:
                break
        return deleted

    # -- deployments ---------------------------------------------------------------

    def delete_deployment(self, deployment_id: int, *, keep_log: bool) -> int:
        """Delete a deployment whose server no longer runs, keeping or deleting its log
        (the caller must choose). Returns the request rows deleted.

        Raises:
            NotFoundError: no such deployment. InvalidOptionError: it is running.
        """
        from lepton_desktop.core.processes import alive
        from lepton_desktop.core.store import serving as serving_store

        deployment = serving_store.get_deployment(self.ctx.conn, deployment_id)
        # a server that recorded its process and still runs; a record left "running" by
        # a killed server (its process gone) may go
        if deployment.status in ("starting", "running") and alive(deployment.pid):
            raise InvalidOptionError(
                f"deployment {deployment_id} is {deployment.status}: stop its server first"
            )
        return log_store.delete_deployment(self.ctx.conn, deployment_id, keep_log)


def check_export_path(path: Path) -> str:
    """The format ``path`` asks for (``csv``, ``parquet``).

    Raises:
        InvalidOptionError: a folder, an existing file, another suffix, or a missing
            parent folder.
    """
    if path.is_dir():
        raise InvalidOptionError(f"{path} is a folder: give a file name ending .csv or .parquet")
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in EXPORT_FORMATS:
        raise InvalidOptionError(f"{path}: the file name must end .csv or .parquet")
    if path.exists():
        raise InvalidOptionError(f"{path} exists; exports never replace a file")
    if not path.parent.is_dir():
        raise InvalidOptionError(f"{path.parent} is not a folder")
    return fmt


def _check_filter(flt: RequestFilter) -> None:
    if flt.version is not None and flt.model is None:
        raise InvalidOptionError("a version needs its model (--model NAME:VERSION)")
    if isinstance(flt.status, str) and flt.status not in STATUS_CLASSES:
        raise InvalidOptionError(f"unknown status class {flt.status!r}")
    for bound in (flt.since, flt.until):
        if bound is not None and not math.isfinite(bound):
            raise InvalidOptionError("a time bound must be a finite Unix time")


def _export_row(row: tuple[Any, ...]) -> list[Any]:
    """A stored row (``REQUEST_COLUMNS`` order, then the labels' JSON) -> export columns:
    the UTC time inserted after ``ts``, JSON texts kept as stored (none decoded)."""
    ts = row[2]
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))
    labels = row[15] if row[15] not in (None, "{}") else None
    return [*row[:3], f"{when}.{int(ts % 1 * 1000):03d}Z", *row[3:15], labels]


class _CsvWriter:
    """CSV rows into a binary file (UTF-8, a header, empty cells for missing values)."""

    def __init__(self, handle: Any) -> None:
        import io

        self._text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        self._csv = csv.writer(self._text)
        self._csv.writerow(EXPORT_COLUMNS)

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        self._csv.writerows(["" if v is None else v for v in row] for row in rows)

    def close(self) -> None:
        self._text.flush()
        self._text.detach()


class _ParquetWriter:
    """Parquet row groups, one per chunk, with a fixed schema."""

    def __init__(self, handle: Any) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        self._schema = pa.schema([
            ("id", pa.int64()), ("deployment_id", pa.int64()), ("ts", pa.float64()),
            ("time", pa.string()), ("request_id", pa.string()), ("method", pa.string()),
            ("path", pa.string()), ("protocol", pa.string()), ("model", pa.string()),
            ("version", pa.int64()), ("status", pa.int64()), ("latency_ms", pa.float64()),
            ("n_rows", pa.int64()), ("inputs", pa.string()), ("outputs", pa.string()),
            ("error", pa.string()), ("labels", pa.string()),
        ])  # fmt: skip
        self._writer = pq.ParquetWriter(handle, self._schema)

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        pa = self._pa
        arrays = [pa.array([row[i] for row in rows], type=field.type)
                  for i, field in enumerate(self._schema)]  # fmt: skip
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self._schema))

    def close(self) -> None:
        self._writer.close()
