"""Labels imported later: a CSV of ``request_id,label[,row]`` turned into feedback.

Labels often arrive days after the answers (a fraud case closes, a diagnosis is
confirmed). ``monitor feedback PROJECT FILE.csv``, ``Project.import_feedback`` and the
Monitoring tab's *Import labels…* read such a file, check every line against the
request log and the model that answered (the request was answered, the row exists, the
label is one of the model's classes or a number for a regressor), and store all the
labels in one transaction, resolved against their answers as ``/feedback`` labels are,
so live quality counts them at once. One bad line stores nothing: the error names the
line and the problem.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lepton_desktop.core.errors import DataImportError, NotFoundError
from lepton_desktop.core.store import models as model_store
from lepton_desktop.core.store import monitoring as store

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext

#: The largest file read (bytes), checked before reading, and the most labels in one.
MAX_BYTES = 256 * 1024 * 1024
MAX_LABELS = 5_000_000
#: The longest label accepted (characters): a class name or a number.
MAX_LABEL_CHARS = 1000
COLUMNS = ("request_id", "label", "row")


@dataclasses.dataclass(frozen=True)
class LabelImport:
    """What an import stored.

    Attributes:
        path: the file read.
        labels: labels stored.
        requests: distinct requests labelled.
        by_model: labels per ``model:version``.
    """

    path: str
    labels: int
    requests: int
    by_model: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class _Line:
    number: int
    request_id: str
    label: str
    row: int


def import_labels(ctx: ProjectContext, path: Path) -> LabelImport:
    """Check every line of ``path`` and store its labels (all or none).

    Raises:
        DataImportError: naming the file, the line and the problem; nothing is stored.
    """
    lines = _read(path)
    answers = store.answered(ctx.conn, sorted({line.request_id for line in lines}))
    classes: dict[str, list[str] | None] = {}
    now = time.time()
    values: list[tuple[int | None, str, float, str, int]] = []
    by_model: dict[str, int] = {}
    for line in lines:
        model, version, deployment = _answer_of(path, line, answers)
        ref = f"{model}:{version}"
        if ref not in classes:
            classes[ref] = _classes(ctx, model, version)
        label = _label(path, line, ref, classes[ref])
        values.append((deployment, line.request_id, now, json.dumps(label), line.row))
        by_model[ref] = by_model.get(ref, 0) + 1
    store.store_labels(ctx.conn, values)
    return LabelImport(str(path), len(values), len({v[1] for v in values}), by_model)


def _read(path: Path) -> list[_Line]:
    """The file's lines, checked for shape (size, header, fields, duplicates)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DataImportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if size > MAX_BYTES:
        raise DataImportError(
            f"{path}: {size:,} bytes is over the {MAX_BYTES // 2**20} MiB a label file may have; "
            "split it"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataImportError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise DataImportError(f"{path}: the file is empty; give request_id,label[,row]") from None
    except csv.Error as exc:
        raise DataImportError(f"{path} line 1: malformed CSV ({exc})") from None
    _check_header(path, header)
    lines = _lines(path, reader, header)
    if not lines:
        raise DataImportError(f"{path}: no labels after the header")
    return lines


def _lines(path: Path, reader: Any, header: list[str]) -> list[_Line]:
    """Every data line, parsed; the same request row twice is refused."""
    lines: list[_Line] = []
    seen: dict[tuple[str, int], int] = {}
    try:
        for fields in reader:
            if not fields:
                continue
            line = _parse(path, reader.line_num, header, fields)
            key = (line.request_id, line.row)
            if key in seen:
                raise DataImportError(
                    f"{path} line {line.number}: request {line.request_id} row {line.row} "
                    f"is labelled on line {seen[key]} too"
                )
            seen[key] = line.number
            lines.append(line)
            if len(lines) > MAX_LABELS:
                raise DataImportError(f"{path}: more than {MAX_LABELS:,} labels; split the file")
    except csv.Error as exc:
        raise DataImportError(f"{path} line {reader.line_num}: malformed CSV ({exc})") from None
    return lines


def _check_header(path: Path, header: list[str]) -> None:
    missing = [c for c in COLUMNS[:2] if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    if missing or unknown or len(set(header)) != len(header):
        found = ",".join(header)
        raise DataImportError(
            f"{path} line 1: the header is {found!r}; give the columns request_id,label "
            "and optionally row (a request's row number, from 0)"
        )


def _parse(path: Path, number: int, header: list[str], fields: list[str]) -> _Line:
    where = f"{path} line {number}"
    if len(fields) != len(header):
        raise DataImportError(f"{where}: {len(fields)} fields where the header has {len(header)}")
    values = dict(zip(header, (f.strip() for f in fields), strict=True))
    if not values["request_id"]:
        raise DataImportError(f"{where}: the request_id is empty")
    label = values["label"]
    if not label:
        raise DataImportError(f"{where}: the label is empty")
    if len(label) > MAX_LABEL_CHARS:
        raise DataImportError(f"{where}: a label of {len(label):,} characters is not a label")
    text = values.get("row") or "0"
    if not text.isdigit() or len(text) > 9:
        raise DataImportError(f"{where}: row {text!r} is not a row number (0, 1, ...)")
    return _Line(number, values["request_id"], label, int(text))


def _answer_of(
    path: Path, line: _Line, answers: dict[str, tuple[str, int, int, int, int | None]]
) -> tuple[str, int, int | None]:
    """``(model, version, deployment)`` of the answer ``line`` labels."""
    where = f"{path} line {line.number}"
    found = answers.get(line.request_id)
    if found is None:
        raise DataImportError(f"{where}: no request with id {line.request_id!r} in the log")
    model, version, status, rows, deployment = found
    if status >= 400 or not model:
        raise DataImportError(
            f"{where}: request {line.request_id} was not answered by a model (status {status})"
        )
    if line.row >= rows:
        raise DataImportError(
            f"{where}: request {line.request_id} had {rows} row"
            f"{'s' if rows != 1 else ''}; row {line.row} is not one"
        )
    return model, version, deployment


def _classes(ctx: ProjectContext, model: str, version: int) -> list[str] | None:
    """The classes of ``model:version`` (``None``: a regressor or forecaster).

    A model deleted since it served is judged by the labels its answers named.
    """
    try:
        found = model_store.resolve(ctx.conn, f"{model}:{version}")
    except NotFoundError:
        named = store.predicted_labels(ctx.conn, model)
        return named or None
    classes = found.params.get("classes")
    return [str(c) for c in classes] if classes else None


def _label(path: Path, line: _Line, ref: str, classes: list[str] | None) -> str | float:
    """The label as stored: a class name, or a finite number for a regressor."""
    where = f"{path} line {line.number}"
    if classes is not None:
        if line.label not in classes:
            shown = ", ".join(classes[:20]) + (" ..." if len(classes) > 20 else "")
            raise DataImportError(f"{where}: {line.label!r} is not a class of {ref} ({shown})")
        return line.label
    try:
        value = float(line.label)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise DataImportError(f"{where}: {ref} predicts numbers; {line.label!r} is not one")
    return value
