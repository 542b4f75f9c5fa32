"""Retrain with feedback: the champion's training data plus the labelled served rows.

1. The rows the champion trained on (its dataset version, with the split its run
   drew, exactly as training drew it) get the served rows a label was sent back for
   (the captured raw record, the label as the target), all in the *train* split.
2. That is written as a new version of the dataset, child of the champion's, whose
   operations record the lineage: ``{"op": "add_feedback", "rows": N, "requests":
   [request ids]}``.
3. A run starts from the champion's settings (its run's configuration) on the new
   version and registers the next version of the model (``Project.retrain_with_feedback``
   runs it: training is the facade's to start).
4. The validation and test rows are the champion's own, untouched: the candidate's
   test metrics and the champion's are measured on the same held-out rows, and are
   returned side by side.

Served rows are raw records, in the units clients send. A dataset version made by prep
(filled, scaled, one-hot encoded) gets them through its recorded pipeline, the one
serving replays (:func:`~lepton_desktop.core.preprocessing.tabular.apply_pipeline`
over :func:`~lepton_desktop.core.datasets.prep.pipeline_chain`): each added row is
what training would have seen had that record been in the data; a record the pipeline
refuses (a feature missing where training dropped such rows, text in a number) is left
out and counted. The new version keeps no steps of its own, so the retrained model is
served with the same chain. Only tabular datasets with a target can take served rows;
others are refused naming why. Runs in the caller's process (the CLI, a worker).
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

import numpy as np

from lepton_desktop.core.errors import InvalidOptionError
from lepton_desktop.core.progress import NullReporter, Reporter
from lepton_desktop.core.store import request_log as log_store

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext
    from lepton_desktop.core.datasets.frame import Frame
    from lepton_desktop.core.entities import DatasetVersion, ModelVersion

#: Labelled served rows taken at most (the newest).
MAX_FEEDBACK_ROWS = 100_000


@dataclasses.dataclass(frozen=True)
class FeedbackDataset:
    """What :func:`feedback_dataset` wrote, and how to train on it.

    Attributes:
        champion: the version whose data and settings are reused.
        parent: its dataset version; version: the new one (parent + served rows).
        options: the champion's training settings, for the new run.
        feedback_rows: labelled served rows added; requests: from how many requests.
        refused: labelled rows the dataset's preprocessing could not take (left out).
    """

    champion: ModelVersion
    parent: DatasetVersion
    version: DatasetVersion
    options: dict[str, Any]
    feedback_rows: int
    requests: int
    refused: int = 0


def feedback_dataset(
    ctx: ProjectContext, model: str, reporter: Reporter | None = None
) -> FeedbackDataset:
    """Write the new dataset version (steps 1 and 2 of the module docstring).

    Raises:
        NotFoundError: no such model. InvalidOptionError: nothing labelled to add, or
            a champion whose data cannot take served rows; nothing is written then.
    """
    from lepton_desktop.core.datasets.frame import load_frame, write_frame
    from lepton_desktop.core.monitoring.compare import champion_of
    from lepton_desktop.core.store import datasets as dataset_store
    from lepton_desktop.core.store import models as model_store
    from lepton_desktop.core.store import runs as run_store
    from lepton_desktop.core.training.config import TrainConfig
    from lepton_desktop.core.training.data import split_as_trained

    reporter = reporter or NullReporter()
    champion = model_store.resolve(ctx.conn, f"{model}:{champion_of(ctx, model)}")
    if champion.run_id is None or champion.dataset_version_id is None:
        raise InvalidOptionError(f"{champion.ref} has no training run to start from")
    dataset = dataset_store.get_version(ctx.conn, champion.dataset_version_id)
    if dataset.kind != "tabular" or dataset.target is None:
        raise InvalidOptionError(
            f"{champion.ref} trained on {dataset.ref}, which is not a tabular dataset with "
            "a target: served rows cannot be added to it"
        )
    labelled = log_store.labelled_inputs(ctx.conn, model, MAX_FEEDBACK_ROWS)
    records, added, refused = _prepared(ctx, dataset,
                                        _labelled_records(labelled, dataset.target))  # fmt: skip
    if not records:
        raise InvalidOptionError(
            f"no labelled served rows of {model} with captured inputs"
            + (f" that {dataset.ref}'s preprocessing accepts ({refused:,} refused)"
               if refused else "")
            + ": send labels to /feedback (and serve without --no-capture) first"
        )  # fmt: skip
    config = TrainConfig.from_dict(run_store.get(ctx.conn, champion.run_id).config)
    frame = split_as_trained(load_frame(ctx.conn, dataset, reporter), dataset.target,
                             config, champion.task == "classification")  # fmt: skip
    grown = _with_rows(frame, added, len(records))
    ids = sorted({request_id for request_id, _ in records})
    operation = {"op": "add_feedback", "rows": len(records), "model": champion.ref,
                 "requests": ids}  # fmt: skip
    if refused:
        operation["refused"] = refused
    version = write_frame(ctx.conn, dataset, grown, job_id=None, reporter=reporter,
                          pipeline=[], operations=[operation])  # fmt: skip
    return FeedbackDataset(champion, dataset, version, config.to_dict() | {"model_name": model},
                           len(records), len(ids), refused)  # fmt: skip


def _prepared(
    ctx: ProjectContext, dataset: DatasetVersion, records: list[tuple[str, dict[str, Any]]]
) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, list[Any]], int]:
    """The labelled records ``dataset``'s pipeline accepts, and their rows in its
    columns (feature columns through the pipeline, the target as labelled); with how
    many were refused. A version never prepared has an input step only: its rows are
    the records' values, read as serving reads them."""
    from lepton_desktop.core.datasets.prep import pipeline_chain
    from lepton_desktop.core.preprocessing.tabular import RecordError, apply_pipeline

    chain = pipeline_chain(ctx.conn, dataset)
    target = str(dataset.target)
    try:
        names, matrix = apply_pipeline(chain, [record for _, record in records])
        kept = records
    except RecordError:  # one by one, to leave out only the records it refuses
        kept, parts = [], []
        for item in records:
            try:
                names, one = apply_pipeline(chain, [item[1]])
            except RecordError:
                continue
            kept.append(item)
            parts.append(one)
        matrix = np.concatenate(parts) if parts else np.empty((0, 0))
    columns: dict[str, list[Any]] = {name: list(matrix[:, i]) for i, name in
                                     enumerate(names)} if kept else {}  # fmt: skip
    columns[target] = [record[target] for _, record in kept]
    return kept, columns, len(records) - len(kept)


def _labelled_records(rows: list[tuple[str, int, str, str]], target: str
                      ) -> list[tuple[str, dict[str, Any]]]:  # fmt: skip
    """``(request_id, record with the target set)`` for each labelled row found."""
    out = []
    for request_id, row, inputs, label in rows:
        try:
            records = json.loads(inputs)
        except ValueError:
            continue
        if isinstance(records, list) and 0 <= row < len(records) and isinstance(
                records[row], dict):  # fmt: skip
            out.append((request_id, {**records[row], target: json.loads(label)}))
    return out


def _with_rows(frame: Frame, added: dict[str, list[Any]], count: int) -> Frame:
    """``frame`` with ``count`` rows (``added``: column -> values; a column it lacks is
    missing) appended to its train split (numbers as float64 with NaN for missing or
    unreadable values, other columns as objects with None)."""
    from lepton_desktop.core.datasets.frame import Frame

    columns = {}
    for name, values in frame.columns.items():
        raw = added.get(name, [None] * count)
        if values.dtype.kind == "f":
            new = np.array([_number(v) for v in raw], dtype=np.float64)
        else:
            new = np.array([None if v is None else str(v) for v in raw], dtype=object)
        columns[name] = np.concatenate([values, new.astype(values.dtype, copy=False)])
    split = np.concatenate([frame.split, np.zeros(count, dtype=frame.split.dtype)])
    rows = np.concatenate([frame.rows, np.full(count, -1, dtype=frame.rows.dtype)])
    return Frame(columns, dict(frame.dtypes), split, rows, dict(frame.extra))


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return number if np.isfinite(number) else float("nan")
