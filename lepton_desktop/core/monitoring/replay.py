"""Replay logged requests against another model version and diff the answers.

The captured inputs of each selected request (raw records, as the client sent them to
``/predict`` or MLflow's record formats) go through the same
:class:`~lepton_desktop.core.inference.predictor.Predictor` a server runs for the
target version; its answers are compared row by row with the answers logged. Labels
sent back as feedback give both versions' accuracy (or error) on the same rows.
Requests without records (tensors sent to V2, ``--no-capture``, errors) are counted
as skipped, never guessed.

Runs in a ``replay`` worker for the GUI (it loads torch), in the foreground for the CLI.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lepton_desktop.core.errors import InvalidOptionError
from lepton_desktop.core.progress import NullReporter, Reporter
from lepton_desktop.core.store import request_log as log_store
from lepton_desktop.core.store.request_log import RequestFilter

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext
    from lepton_desktop.core.entities import RequestRecord
    from lepton_desktop.core.inference.predictor import Predictor

#: Requests replayed at most (a selection beyond is cut, and the result says so).
MAX_REPLAYED = 100_000
DEFAULT_REPLAYED = 10_000
#: Changed rows listed in the result (all are counted).
LISTED_CHANGES = 200
#: Requests read and predicted together (one forward pass per chunk when all are valid).
CHUNK = 256
#: Two predicted values agree when they differ by at most this (absolute + relative).
VALUE_TOLERANCE = 1e-6


@dataclasses.dataclass
class Tally:
    """Counts of a comparison of two versions' answers, row by row."""

    requests: int = 0
    rows: int = 0
    agreeing: int = 0
    skipped: int = 0
    failed: int = 0
    first_failure: str | None = None
    abs_diffs: list[float] = dataclasses.field(default_factory=list)
    changes: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    changed: int = 0
    labelled: int = 0
    right_before: float = 0.0  # rows right (accuracy), or summed absolute errors
    right_after: float = 0.0
    seconds: float = 0.0


def replay(
    ctx: ProjectContext,
    flt: RequestFilter,
    target: str,
    *,
    limit: int = DEFAULT_REPLAYED,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Answer the selected requests' inputs with ``target`` and diff them with the log.

    Only answered requests (status 200) are replayed: the others have no answer to
    compare with. Returns ``target``, ``requests`` (replayed), ``rows``, ``agreeing``,
    ``agreement`` (share of rows whose label is the same, or value within
    :data:`VALUE_TOLERANCE`), ``changed`` (rows), ``changes`` (the first
    :data:`LISTED_CHANGES`: ``request_id``, ``row``, ``answered_by``, ``before``,
    ``after``, ``truth``), ``skipped`` (no records captured), ``failed`` (inputs the
    target refused, with ``first_failure``), ``mean_abs_diff`` (values),
    ``labelled`` and ``quality`` (``before``/``after``: accuracy, or mean absolute
    error, on the labelled rows), ``ms_per_row`` and ``truncated``.

    Raises:
        NotFoundError: no such target version. InvalidOptionError: a bad ``limit``.
    """
    from lepton_desktop.core.inference.predictor import ModelParts, Predictor

    if isinstance(limit, bool) or not 1 <= limit <= MAX_REPLAYED:
        raise InvalidOptionError(f"--limit {limit}: give a number from 1 to {MAX_REPLAYED:,}")
    reporter = reporter or NullReporter()
    predictor = Predictor(ModelParts.from_project(ctx, target))
    answered = dataclasses.replace(flt, status=200)
    total = log_store.count(ctx.conn, answered, cap=limit)
    tally = Tally()
    for chunk in log_store.chunks(ctx.conn, answered, CHUNK, limit):
        labels = log_store.labels_of(ctx.conn, [r.request_id for r in chunk])
        _replay_chunk(predictor, chunk, labels, tally)
        reporter.update(tally.requests + tally.skipped + tally.failed, total,
                        f"{tally.rows:,} rows replayed")  # fmt: skip
    truncated = log_store.count(ctx.conn, answered, cap=limit + 1) > limit
    return _result(predictor, tally, truncated)


def _records_of(record: RequestRecord) -> list[Any] | None:
    """The raw records a request carried, when its inputs and outputs were captured."""
    inputs, outputs = record.inputs, record.outputs
    if not isinstance(inputs, list) or not isinstance(outputs, list) or not inputs:
        return None
    if len(inputs) != len(outputs) or not all(isinstance(r, dict | list) for r in inputs):
        return None
    return inputs


def _replay_chunk(predictor: Predictor, chunk: Sequence[RequestRecord],
                  labels: dict[str, dict[int, Any]], tally: Tally) -> None:  # fmt: skip
    from lepton_desktop.core.inference.predictor import InvalidInputError

    usable = [(r, rec) for r in chunk if (rec := _records_of(r)) is not None]
    tally.skipped += len(chunk) - len(usable)
    started = time.perf_counter()
    try:  # one forward pass for the chunk; one per request if any of them is refused
        flat = [row for _, records in usable for row in records]
        answers = predictor.predict(flat) if flat else []
        per_request, at = [], 0
        for _, records in usable:
            per_request.append(answers[at : at + len(records)])
            at += len(records)
    except InvalidInputError:
        per_request = []
        for record, records in usable:
            try:
                per_request.append(predictor.predict(records))
            except InvalidInputError as exc:
                per_request.append([])
                tally.failed += 1
                tally.first_failure = tally.first_failure or f"{record.request_id}: {exc}"
    tally.seconds += time.perf_counter() - started
    for (record, _), after in zip(usable, per_request, strict=True):
        if after:
            _compare(record, after, labels.get(record.request_id, {}), tally)


def _compare(record: RequestRecord, after: list[dict[str, Any]], truths: dict[int, Any],
             tally: Tally) -> None:  # fmt: skip
    tally.requests += 1
    for row, (before, now) in enumerate(zip(record.outputs, after, strict=True)):
        tally.rows += 1
        same, diff = same_answer(before, now)
        if diff is not None:
            tally.abs_diffs.append(diff)
        truth = truths.get(row)
        if truth is not None:
            score_row(before, now, truth, tally)
        if same:
            tally.agreeing += 1
            continue
        tally.changed += 1
        if len(tally.changes) < LISTED_CHANGES:
            tally.changes.append({
                "request_id": record.request_id, "row": row,
                "answered_by": f"{record.model}:{record.version}",
                "before": answer_of(before), "after": answer_of(now), "truth": truth,
            })  # fmt: skip


def answer_of(answer: Any) -> Any:
    """An answer's label (classification) or value."""
    if isinstance(answer, dict):
        return answer.get("label", answer.get("value"))
    return answer


def same_answer(before: Any, now: dict[str, Any]) -> tuple[bool, float | None]:
    """Whether two answers agree, and the absolute difference of two values."""
    if "label" in now:
        return answer_of(before) == now["label"], None
    old = answer_of(before)
    if not isinstance(old, int | float) or isinstance(old, bool):
        return False, None
    diff = abs(float(old) - now["value"])
    return diff <= VALUE_TOLERANCE * (1 + abs(float(old))), diff


def score_row(before: Any, now: dict[str, Any], truth: Any, tally: Tally) -> None:
    """Count a labelled row: right or not (labels), or each answer's absolute error."""
    tally.labelled += 1
    if "label" in now:
        tally.right_before += int(str(answer_of(before)) == str(truth))
        tally.right_after += int(str(now["label"]) == str(truth))
        return
    try:
        value = float(truth)
    except (TypeError, ValueError):
        tally.labelled -= 1
        return
    old = answer_of(before)
    tally.right_before += abs(float(old) - value) if isinstance(old, int | float) else math.nan
    tally.right_after += abs(now["value"] - value)


def _result(predictor: Predictor, tally: Tally, truncated: bool) -> dict[str, Any]:
    classify = bool(predictor.classes)
    quality = None
    if tally.labelled:
        metric = "accuracy" if classify else "mae"
        quality = {"metric": metric, "before": tally.right_before / tally.labelled,
                   "after": tally.right_after / tally.labelled}  # fmt: skip
    return {
        "target": predictor.parts.ref, "requests": tally.requests, "rows": tally.rows,
        "agreeing": tally.agreeing,
        "agreement": tally.agreeing / tally.rows if tally.rows else None,
        "changed": tally.changed, "changes": tally.changes, "skipped": tally.skipped,
        "failed": tally.failed, "first_failure": tally.first_failure,
        "mean_abs_diff": (sum(tally.abs_diffs) / len(tally.abs_diffs)
                          if tally.abs_diffs else None),
        "labelled": tally.labelled, "quality": quality,
        "ms_per_row": 1000 * tally.seconds / tally.rows if tally.rows else None,
        "truncated": truncated,
    }  # fmt: skip
