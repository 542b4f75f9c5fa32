"""The rows a model version was tested on, as raw records, and its training mean.

A version's test split is found from its lineage exactly as training drew it (the
dataset version it records, its run's seed), then put back in the units clients send
(the dataset's own scaling and one-hot undone), so an explained test row goes through
the same :class:`~lepton_desktop.core.inference.predictor.Predictor` encoding as a
record typed by a user or sent to the server. Row ``N`` is the ``N``-th test row (a
table's row, an image, or a window of the series), in the evaluation's order.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from lepton_desktop.core.datasets import prep
from lepton_desktop.core.datasets.frame import Frame, load_frame
from lepton_desktop.core.errors import InvalidOptionError, NotFoundError
from lepton_desktop.core.preprocessing import series as windowing
from lepton_desktop.core.preprocessing import tabular as steps
from lepton_desktop.core.progress import NullReporter
from lepton_desktop.core.store import datasets as dataset_store
from lepton_desktop.core.training import data as training_data
from lepton_desktop.core.training.config import TrainConfig

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext
    from lepton_desktop.core.entities import DatasetVersion, ModelVersion

#: The training mean is taken over at most this many training rows (seeded sample):
#: a mean's error falls as 1/sqrt(n), and encoding a million records would take seconds.
MEAN_ROWS = 5000
TEST_SPLIT, TRAIN_SPLIT = 2, 0


class NoTrainingDataError(NotFoundError):
    """A model version's training data is not in the project (deleted or never recorded)."""


@dataclasses.dataclass(frozen=True)
class RowSet:
    """A version's test rows as raw records, their true answers, and training records.

    Attributes:
        kind: tabular, images or timeseries.
        records: one raw record per test row (what ``/predict`` takes).
        truth: the true label (text) or value of each test row.
        train_records: tabular only: up to :data:`MEAN_ROWS` training records, whose
            encoded mean is the Integrated Gradients baseline.
    """

    kind: str
    records: list[dict[str, Any]]
    truth: list[Any]
    train_records: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def record(self, row: Any) -> dict[str, Any]:
        """The raw record of test row ``row``. Raises InvalidOptionError when out of range."""
        if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < len(self.records):
            raise InvalidOptionError(
                f"row {row!r} is not a test row: the test split has {len(self.records)} rows "
                f"(0 to {len(self.records) - 1})"
            )
        return self.records[row]


def load_rows(ctx: ProjectContext, version: ModelVersion) -> RowSet:
    """The test rows of ``version`` (and, for tables, training records for the mean).

    Raises:
        NoTrainingDataError: the version's dataset is gone or was never recorded.
        InvalidOptionError: the data no longer splits as it did (an empty split).
    """
    dataset = _dataset(ctx, version)
    config = TrainConfig.from_dict(version.params.get("config", {}))
    frame = load_frame(ctx.conn, dataset, NullReporter())
    if dataset.kind == "timeseries":
        return _series(frame, version)
    target = str(version.params.get("target") or config.target or dataset.target or "label")
    frame = training_data.split_as_trained(frame, target, config, version.task == "classification")
    test = frame.take(frame.split == TEST_SPLIT)
    truth = [_truth(v, version.task) for v in test.columns[target]]
    if dataset.kind == "images":
        return RowSet("images", _image_records(ctx, dataset, test), truth)
    chain = prep.pipeline_chain(ctx.conn, dataset)
    columns = [str(c["name"]) for c in version.signature.get("inputs", [])]
    train = frame.take(frame.split == TRAIN_SPLIT)
    sample = _sample(len(train), config.seed)
    return RowSet(
        "tabular",
        _records(steps.undo_steps(chain, test.columns), columns, np.arange(len(test))),
        truth,
        _records(steps.undo_steps(chain, train.columns), columns, sample),
    )


def _dataset(ctx: ProjectContext, version: ModelVersion) -> DatasetVersion:
    try:
        if version.dataset_version_id is None:
            raise NotFoundError(f"{version.ref} records no dataset version")
        return dataset_store.get_version(ctx.conn, version.dataset_version_id)
    except NotFoundError as exc:
        raise NoTrainingDataError(
            f"no test rows for {version.ref}: {exc}; explain a record instead"
        ) from None


def _truth(value: Any, task: str) -> Any:
    if task == "classification":
        return training_data.label_text(value)
    return float(value)


def _sample(rows: int, seed: int) -> np.ndarray:
    if rows <= MEAN_ROWS:
        return np.arange(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, MEAN_ROWS, replace=False))


def _records(columns: steps.Columns, names: list[str], rows: np.ndarray) -> list[dict[str, Any]]:
    present = [n for n in names if n in columns]
    values = {n: columns[n] for n in present}
    return [{n: _plain(values[n][int(i)]) for n in present} for i in rows]


def _plain(value: Any) -> Any:
    # numpy scalars -> Python (JSON, and the predictor's fast path); NaN -> missing.
    if value is None:
        return None
    if isinstance(value, np.floating | float):
        number = float(value)
        return None if math.isnan(number) else number
    if isinstance(value, np.integer):
        return int(value)
    return str(value)


def _image_records(
    ctx: ProjectContext, dataset: DatasetVersion, test: Frame
) -> list[dict[str, Any]]:
    wanted = {int(r): i for i, r in enumerate(test.rows)}
    blobs: list[bytes] = [b""] * len(wanted)
    row = 0
    for batch in dataset_store.iter_images(ctx.conn, dataset):
        for blob in batch:
            if row in wanted:
                blobs[wanted[row]] = bytes(blob)
            row += 1
    return [{"image": blob} for blob in blobs]


def _series(frame: Frame, version: ModelVersion) -> RowSet:
    step = next(s for s in version.pipeline if s.get("step") == "window")
    column = str(step["column"])
    values = training_data.interpolated(frame.columns[column].astype(np.float64))
    split = frame.split if frame.has_split() else _ordered_split(len(values))
    ends = windowing.window_ends(len(values), step)
    ends = ends[split[ends] == TEST_SPLIT]
    window, horizon = int(step["window"]), int(step["horizon"])
    records = [
        {column: values[end - horizon - window + 1 : end - horizon + 1].tolist()} for end in ends
    ]
    return RowSet("timeseries", records, [float(values[end]) for end in ends])


def _ordered_split(n: int) -> np.ndarray:
    from lepton_desktop.core.datasets.splits import assign_split

    return assign_split(n, training_data.DEFAULT_FRACTIONS, 0, ordered=True)
