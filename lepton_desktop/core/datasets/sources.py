"""Reading tabular sources (CSV, Parquet, NPZ) as streams of Arrow record batches.

Every problem with a source becomes a :class:`DataImportError` that names the file,
and the line where one can be found (a ragged row, a byte that is not UTF-8).
"""

from __future__ import annotations

import contextlib
import csv
import io
import queue
import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from lepton_desktop.core.datasets.formats import PARQUET_SUFFIXES
from lepton_desktop.core.errors import DataImportError

_BLOCK_SIZE = 4 << 20
_TIMESTAMP_FORMATS = [pacsv.ISO8601, "%Y-%m", "%Y/%m/%d", "%Y/%m/%d %H:%M:%S"]
#: Batches parsed ahead of the consumer (each is one ~4 MB block of a CSV).
_READ_AHEAD = 2
_END = object()


class _ReadAhead:
    """Runs an iterator in a background thread, at most ``depth`` items ahead.

    Arrow parses with the GIL released, so the next block is parsed on the second
    core while the caller binds the current one into SQLite: a 1,000,000-row CSV
    imports about 20% faster (bench/import_bench.py). An exception in the thread
    is raised again in the consumer, where it would have been raised anyway.
    """

    def __init__(self, items: Iterable[pa.RecordBatch], depth: int) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._produce, args=(items,), name="csv-read-ahead", daemon=True
        )
        self._thread.start()

    def _produce(self, items: Iterable[pa.RecordBatch]) -> None:
        try:
            for item in items:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:  # handed over; the consumer re-raises it
            self._put(exc)

    def _put(self, item: object) -> bool:
        # Wait for room, but give up as soon as the consumer has gone away.
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop the thread (after the block it is parsing) and wait for it."""
        self._stop.set()
        self._thread.join()


class _CountingFile(io.RawIOBase):
    """A file that remembers how many bytes were read (for progress)."""

    def __init__(self, path: Path) -> None:
        self._fh = path.open("rb")
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        n = self._fh.readinto(buffer)
        self.bytes_read += n or 0
        return n or 0

    def close(self) -> None:
        self._fh.close()
        super().close()


class TableSource:
    """A tabular file opened for streaming.

    Attributes:
        path: the file.
        schema: Arrow schema (column names and the types inferred for them).
        total: size in progress units (bytes for CSV, rows otherwise).
    """

    def __init__(self, path: Path, column_types: dict[str, pa.DataType] | None = None) -> None:
        self.path = path
        self._column_types = column_types or {}
        self._counter: _CountingFile | None = None
        self._read_ahead: _ReadAhead | None = None
        check_readable(path)
        suffix = path.suffix.lower()
        if suffix in PARQUET_SUFFIXES:
            self._open_parquet()
        elif suffix == ".npz":
            self._open_npz()
        else:
            self._open_csv()

    def _open_csv(self) -> None:
        sniff_text(self.path)
        self._counter = _CountingFile(self.path)
        delimiter = "\t" if self.path.suffix.lower() == ".tsv" else ","
        try:
            self._reader = pacsv.open_csv(
                self._counter,
                read_options=pacsv.ReadOptions(block_size=_BLOCK_SIZE),
                parse_options=pacsv.ParseOptions(delimiter=delimiter),
                convert_options=pacsv.ConvertOptions(
                    column_types=self._column_types,
                    timestamp_parsers=_TIMESTAMP_FORMATS,
                    strings_can_be_null=True,
                ),
            )
        except pa.ArrowInvalid as exc:
            self._counter.close()
            raise self.explain(exc) from exc
        self.schema = self._reader.schema
        self.total = self.path.stat().st_size
        self._batches: Iterator[pa.RecordBatch] = iter(self._reader)

    def _open_parquet(self) -> None:
        try:
            pfile = pq.ParquetFile(self.path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataImportError(f"{self.path}: not a readable Parquet file ({exc})") from exc
        self.schema = pfile.schema_arrow
        self.total = pfile.metadata.num_rows
        self._batches = pfile.iter_batches(batch_size=65_536)

    def _open_npz(self) -> None:
        try:
            # allow_pickle=False: an .npz may come from anywhere; never run its code.
            with np.load(self.path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (ValueError, OSError) as exc:
            raise DataImportError(f"{self.path}: not a readable .npz file ({exc})") from exc
        table = _npz_table(self.path, arrays)
        self.schema = table.schema
        self.total = table.num_rows
        self._batches = iter(table.to_batches(max_chunksize=65_536))

    def progress(self, rows_done: int) -> int:
        """Units done so far (bytes for CSV, rows otherwise)."""
        return self._counter.bytes_read if self._counter else rows_done

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Yield record batches, parsed one ahead; parse problems become DataImportError."""
        self._read_ahead = _ReadAhead(self._parsed_batches(), _READ_AHEAD)
        try:
            yield from self._read_ahead
        finally:
            self._read_ahead.close()

    def _parsed_batches(self) -> Iterator[pa.RecordBatch]:
        while True:
            try:
                batch = next(self._batches)
            except StopIteration:
                return
            except pa.ArrowInvalid as exc:
                raise self.explain(exc) from exc
            yield batch

    def close(self) -> None:
        """Release the file (stopping the read-ahead thread first: it reads the file)."""
        if self._read_ahead is not None:
            self._read_ahead.close()
        if self._counter is not None:
            self._counter.close()

    def explain(self, exc: pa.ArrowInvalid) -> Exception:
        """Turn an Arrow error into a message naming the file and, if found, the line."""
        text = str(exc)
        if "Empty CSV file" in text:
            return DataImportError(f"{self.path}: the file is empty")
        if "CSV parse error" in text:
            return DataImportError(ragged_row_message(self.path, text))
        if "straddl" in text:  # Arrow: a row longer than one block
            return DataImportError(oversized_row_message(self.path, _BLOCK_SIZE))
        return exc  # conversion errors are handled by the caller (type widening)


def check_readable(path: Path) -> None:
    """Raise DataImportError unless ``path`` is an existing, non-empty file."""
    if not path.exists():
        raise DataImportError(f"{path}: no such file or folder")
    if path.is_dir():
        raise DataImportError(f"{path}: is a folder; give a CSV, Parquet or .npz file")
    if path.stat().st_size == 0:
        raise DataImportError(f"{path}: the file is empty")


def sniff_text(path: Path) -> None:
    """Refuse binary files before the CSV parser turns them into nonsense columns."""
    head = path.read_bytes()[:65_536] if path.stat().st_size < 65_536 else _head(path)
    if b"\x00" in head:
        raise DataImportError(f"{path}: binary data, not a CSV text file")
    bad_line = first_undecodable_line(head)
    if bad_line is not None:
        raise DataImportError(encoding_message(path, bad_line))


def _head(path: Path) -> bytes:
    with path.open("rb") as fh:
        data = fh.read(65_536)
    # Do not judge a multi-byte character cut by the read: drop the partial line.
    return data[: data.rfind(b"\n") + 1] or data


def first_undecodable_line(data: bytes) -> int | None:
    """1-based number of the first line that is not valid UTF-8, or None."""
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return number
    return None


def encoding_message(path: Path, line: int) -> str:
    """The error for a file that is not UTF-8."""
    return (
        f"{path}, line {line}: the text is not UTF-8 (perhaps Latin-1 or Windows-1252); "
        "save the file as UTF-8 and import it again"
    )


def find_bad_encoding(path: Path) -> str:
    """Scan the whole file for the first line that is not UTF-8 and describe it."""
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return encoding_message(path, number)
    return f"{path}: the text is not UTF-8; save the file as UTF-8 and import it again"


def ragged_row_message(path: Path, arrow_text: str) -> str:
    """Find the first row whose field count differs from the header's."""
    found = re.search(r"Expected (\d+) columns, got (\d+)", arrow_text)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    # csv refuses cells over 128 KB by default; the reader took such rows, so must we.
    limit = csv.field_size_limit(_BLOCK_SIZE * 4)
    try:
        with path.open(newline="", encoding="utf-8", errors="replace") as fh:
            reader = csv.reader(fh, delimiter=delimiter)
            with contextlib.suppress(csv.Error):  # (a cell over even that: say less)
                width = len(next(reader, []))
                for row in reader:
                    if row and len(row) != width:
                        return (
                            f"{path}, line {reader.line_num}: expected {width} fields like "
                            f"the header, found {len(row)}"
                        )
    finally:
        csv.field_size_limit(limit)
    detail = f": expected {found.group(1)} fields, found {found.group(2)}" if found else ""
    return f"{path}: a row does not match the header{detail}"


def oversized_row_message(path: Path, limit: int) -> str:
    """Describe the first line longer than ``limit`` bytes (the reader's block size)."""
    found = find_long_line(path, limit)
    mb = f"{limit / 2**20:g} MB"
    if found is None:
        return f"{path}: a row is larger than the {mb} limit for one row"
    line, size = found
    return (
        f"{path}, line {line}: row {line - 1} is {size / 2**20:.1f} MB long, larger than "
        f"the {mb} limit for one row (does a cell hold a whole document?)"
    )


def find_long_line(path: Path, limit: int) -> tuple[int, int] | None:
    """``(line number, bytes)`` of the first line that spans a whole ``limit`` block.

    The CSV reader takes every line break as the end of a row (a quoted cell cannot
    span lines), so a row is a line. It reads blocks of ``limit`` bytes and fails on
    the first line that covers one entirely (a shorter line straddling a single
    boundary is joined up), so that is the line named. The file is scanned in
    chunks with numpy: a multi-GB file costs seconds, and no line is held whole.
    """
    lines_before = 0  # line breaks before the chunk
    line_start = 0  # file offset of the current line
    offset = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_SCAN_CHUNK):
            breaks = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == ord("\n")) + offset
            starts = np.concatenate(([line_start], breaks[:-1] + 1))
            # The first block boundary at or after each start, plus a block, within it.
            long = np.flatnonzero(-(-starts // limit) * limit + limit <= breaks)
            if long.size:
                first = int(long[0])
                return lines_before + first + 1, int(breaks[first] - starts[first])
            if breaks.size:
                line_start = int(breaks[-1]) + 1
            lines_before += int(breaks.size)
            offset += len(chunk)
    covers = -(-line_start // limit) * limit + limit <= offset
    return (lines_before + 1, offset - line_start) if covers else None


_SCAN_CHUNK = 16 << 20


def _npz_table(path: Path, arrays: dict[str, np.ndarray]) -> pa.Table:
    features = arrays.get("X", arrays.get("x"))
    if features is None or features.ndim != 2:
        raise DataImportError(f"{path}: an .npz dataset needs a 2-D array named 'X' (and 'y')")
    columns = {f"x{i}": features[:, i] for i in range(features.shape[1])}
    labels = arrays.get("y")
    if labels is not None:
        if len(labels) != len(features):
            raise DataImportError(
                f"{path}: 'y' has {len(labels)} rows but 'X' has {len(features)}"
            )
        columns["y"] = labels
    return pa.table(columns)


def read_columns(path: Path) -> list[str]:
    """Column names of a tabular file, for dialogs that offer a target column."""
    source = TableSource(path)
    try:
        return list(source.schema.names)
    finally:
        source.close()
