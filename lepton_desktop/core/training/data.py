"""Turning a dataset version into arrays a model trains on, with the steps to redo it.

Whatever the version's own preparation, training fits a last encoding on the train
split (median/mode fill, standard scaling, one-hot for categories) and appends it to
the version's pipeline, so a model always sees well-conditioned inputs and serving
can replay exactly the same steps on raw records. Every transform is the one of
:mod:`lepton_desktop.core.preprocessing` that serving uses too.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from lepton_desktop.core.datasets.frame import Frame, load_frame
from lepton_desktop.core.datasets.prep import pipeline_chain
from lepton_desktop.core.datasets.splits import assign_split, is_classification
from lepton_desktop.core.entities import DatasetVersion
from lepton_desktop.core.errors import InvalidOptionError
from lepton_desktop.core.preprocessing import images
from lepton_desktop.core.preprocessing import series as windowing
from lepton_desktop.core.preprocessing import tabular as steps
from lepton_desktop.core.progress import NullReporter, Reporter
from lepton_desktop.core.store import datasets as store
from lepton_desktop.core.training.config import ARCH_KINDS, TrainConfig
from lepton_desktop.core.training.models import check_training_memory, model_spec

if TYPE_CHECKING:
    import sqlite3

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)


@dataclasses.dataclass
class TrainData:
    """Arrays per split plus everything needed to interpret and reproduce them.

    Attributes:
        task: classification, regression or forecasting.
        x, y: split name -> inputs and targets (``y`` is class indices or floats).
        classes: class labels (classification).
        feature_names: model input names (tabular).
        groups: source column -> input indices (for permutation importance).
        pipeline: the steps from a raw record to an input row.
        target_mean, target_std: targets are standardized for training (regression).
        target: the target (or forecast) column.
        baseline_x: forecasting: the last observed value of each window (persistence).
    """

    task: str
    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    classes: list[str] | None
    feature_names: list[str]
    groups: dict[str, list[int]]
    pipeline: list[dict[str, Any]]
    target: str
    target_mean: float = 0.0
    target_std: float = 1.0
    baseline_x: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input (without the batch axis)."""
        return tuple(self.x["train"].shape[1:])

    @property
    def n_outputs(self) -> int:
        """Output units: one per class, else one."""
        return len(self.classes) if self.classes else 1


def with_val_in_train(data: TrainData) -> TrainData:
    """The same data with the validation rows added to the training rows.

    For the final fit of chosen hyperparameters; the validation split stays as it
    is (its curve is then an in-sample one). Fitted steps (scaling, target
    standardization) keep their train-split parameters.
    """
    x, y = dict(data.x), dict(data.y)
    x["train"] = np.concatenate([data.x["train"], data.x["val"]])
    y["train"] = np.concatenate([data.y["train"], data.y["val"]])
    baseline = dict(data.baseline_x)
    if "train" in baseline and "val" in baseline:
        baseline["train"] = np.concatenate([baseline["train"], baseline["val"]])
    return dataclasses.replace(data, x=x, y=y, baseline_x=baseline)


def check_fits(version: DatasetVersion, config: TrainConfig) -> None:
    """Refuse an architecture that does not fit the dataset kind, before any work."""
    kinds = ARCH_KINDS[config.arch]
    if version.kind not in kinds:
        fitting = [a for a, k in ARCH_KINDS.items() if version.kind in k]
        raise InvalidOptionError(
            f"--arch {config.arch} trains on {' or '.join(kinds)} data, but {version.ref} is "
            f"{version.kind}; use --arch {fitting[0]}"
        )
    if version.kind != "timeseries" and not (config.target or version.target):
        raise InvalidOptionError(
            f"{version.ref} has no target column; import it with --target COLUMN "
            "or train with --target COLUMN"
        )
    target = config.target or version.target
    if target is not None and target not in [c.name for c in version.columns]:
        raise InvalidOptionError(f"--target {target!r}: {version.ref} has no such column")
    if target is not None and version.kind != "timeseries":
        _check_learnable(version, target)


def _check_learnable(version: DatasetVersion, target: str) -> None:
    # From the column's statistics: a target with one value (a model trained on it
    # scores a perfect, meaningless 1.0) or, for labels, a different value in every
    # row (no class repeats, so none can be learnt, and no split can hold them all).
    stats = version.column(target).stats
    unique, count = stats.get("unique"), stats.get("count") or 0
    if unique == 1:
        raise InvalidOptionError(
            f"target {target!r} of {version.ref} holds the same value in all {count:,} "
            "rows: there is nothing to learn; a model needs at least two different values"
        )
    labels = version.column(target).dtype in ("text", "categorical")
    if labels and unique is not None and count > 2 and unique == count:
        raise InvalidOptionError(
            f"target {target!r} of {version.ref} holds a different value in every row "
            f"({count:,} of {count:,}): no class repeats, so none can be learnt (is it "
            "an id or free text? choose another --target)"
        )


def check_planned_memory(version: DatasetVersion, config: TrainConfig) -> None:
    """Refuse, before a run is queued, a model too large to train on this machine.

    The data's shape is taken from the version's statistics (features after one-hot
    encoding, classes, the largest image), so this is an estimate made without
    reading a row; training checks the exact model again before building it.

    Raises:
        InvalidOptionError: naming the size, the limit and what to make smaller.
    """
    check_training_memory(planned_spec(version, config), config.batch_size)


def check_planned_privacy(version: DatasetVersion, config: TrainConfig) -> None:
    """Refuse, before a private run is queued, settings it cannot meet: δ not below 1/n,
    an ε too small for the data and epochs, or a model Opacus cannot (or, with
    ``--dp-batch-norm refuse``, may not) make private. The worker checks again on the
    exact training examples.

    Raises:
        InvalidOptionError: see :func:`lepton_desktop.core.training.privacy.plan`.
    """
    if config.dp_epsilon is None:
        return  # (before the imports: queueing a plain run never loads torch or Opacus)
    import torch

    from lepton_desktop.core.training import privacy
    from lepton_desktop.core.training.loop import effective_batch_size, planned_epochs
    from lepton_desktop.core.training.models import build

    with torch.device("meta"):  # the layers only: no memory for the weights
        model = build(planned_spec(version, config))
    privacy.check_architecture(model, config.dp_batch_norm)
    n_train = planned_train_examples(version, config)
    privacy.plan(
        config.dp_epsilon,
        config.dp_delta,
        config.dp_max_grad_norm,
        n_train,
        effective_batch_size(config, n_train),
        planned_epochs(config, n_train),
    )


def planned_train_examples(version: DatasetVersion, config: TrainConfig) -> int:
    """About how many examples ``config`` trains on: the train split's rows (with the
    validation rows for ``train+val``), or a series' training windows."""
    splits = version.splits or {}
    fractions = dict(zip(SPLITS, DEFAULT_FRACTIONS, strict=True))
    parts = ("train", "val") if config.train_on == "train+val" else ("train",)
    if splits.get("train"):
        n = sum(int(splits.get(p) or 0) for p in parts)
    else:
        n = int(version.n_rows * sum(fractions[p] for p in parts))
    if version.kind == "timeseries":
        window = config.window or min(24, max(2, n // 8))
        n -= window + config.horizon - 1
    return max(n, 0)


def planned_spec(version: DatasetVersion, config: TrainConfig) -> dict[str, Any]:
    """The model spec ``config`` would give on ``version``, from its column statistics."""
    target = config.target or version.target
    if version.kind == "timeseries":
        return model_spec(config, (config.window or 24, 1), 1)
    classes = _class_count(version, target, config)
    if version.kind == "images":
        side = {c.name: int(c.stats.get("max") or 1) for c in version.columns}
        return model_spec(config, (3, side.get("height", 1), side.get("width", 1)), classes)
    return model_spec(config, (_input_width(version, target),), classes)


def _class_count(version: DatasetVersion, target: str | None, config: TrainConfig) -> int:
    if target is None or config.task in ("regression", "forecasting"):
        return 1
    column = version.column(target)
    if column.dtype == "numeric" and config.task != "classification":
        return 1  # (a numeric target with few values may still be classes: a guess)
    return max(1, int(column.stats.get("unique") or 1))


def _input_width(version: DatasetVersion, target: str | None) -> int:
    width = 0
    for column in version.columns:
        if column.name in (target, version.time_column) or "pii" in column.stats:
            continue
        if column.dtype == "numeric":
            width += 1
        elif column.dtype == "categorical":
            width += int(column.stats.get("unique") or 1)  # one-hot: a column per value
    return max(width, 1)


def load(
    conn: sqlite3.Connection,
    version: DatasetVersion,
    config: TrainConfig,
    reporter: Reporter | None = None,
) -> TrainData:
    """Arrays for ``version`` (see :class:`TrainData`). Raises InvalidOptionError."""
    check_fits(version, config)
    frame = load_frame(conn, version, reporter or NullReporter())
    if version.kind == "timeseries":
        return _timeseries(frame, version, config)
    if version.kind == "images":
        return _images(conn, frame, version, config)
    return _tabular(conn, frame, version, config)


# -- targets and splits ----------------------------------------------------------------


def _target_split(frame: Frame, target: str, config: TrainConfig, classify: bool) -> Frame:
    keep = ~steps.missing_mask(frame.columns[target])
    frame = frame.take(keep)
    if not frame.has_split():
        groups = _codes(frame.columns[target])[0] if classify else None
        frame.split = assign_split(len(frame), DEFAULT_FRACTIONS, config.seed, groups=groups)
    for code, name in enumerate(SPLITS):
        if not (frame.split == code).any():
            raise InvalidOptionError(
                f"the {name} split is empty; prepare the dataset with a split that gives "
                "every part some rows"
            )
    return frame


def split_as_trained(frame: Frame, target: str, config: TrainConfig, classify: bool) -> Frame:
    """The rows a run with ``config`` trained on and its split (for drift references).

    Rows without a target are dropped and, when the version has no split, one is drawn
    with the run's seed, exactly as training did.

    Raises:
        InvalidOptionError: a split would be empty.
    """
    return _target_split(frame, target, config, classify)


def interpolated(values: np.ndarray) -> np.ndarray:
    """A series with its gaps filled the way forecasting training fills them."""
    return _interpolated(values)


def _codes(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    labels = np.array([_label(v) for v in values], dtype=object)
    classes = sorted(set(labels), key=_sort_key)
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[v] for v in labels], dtype=np.int64), classes


def label_text(value: Any) -> str:
    """A target value as the class label training gives it (``1.0`` -> ``"1"``)."""
    return _label(value)


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _sort_key(label: str) -> tuple[int, float | str]:
    try:
        return (0, float(label))
    except ValueError:
        return (1, label)


def _task(config: TrainConfig, target: np.ndarray, kind: str) -> str:
    if config.task:
        return config.task
    if kind == "timeseries":
        return "forecasting"
    return "classification" if is_classification(target) else "regression"


def _split_targets(data: TrainData, y: np.ndarray, split: np.ndarray) -> None:
    if data.task == "classification":
        codes, data.classes = _codes(y)
        if len(data.classes) < 2:
            raise InvalidOptionError(
                f"target {data.target!r} holds only the class {data.classes[0]!r} in the rows "
                "that have one: a classifier needs at least two classes"
            )
        data.y = {n: codes[split == i] for i, n in enumerate(SPLITS)}
        return
    values = y.astype(np.float64)
    train = values[split == 0]
    data.target_mean = float(train.mean())
    data.target_std = float(train.std()) or 1.0
    scaled = ((values - data.target_mean) / data.target_std).astype(np.float32)
    data.y = {n: scaled[split == i] for i, n in enumerate(SPLITS)}


# -- tabular -----------------------------------------------------------------------------


def _tabular(
    conn: sqlite3.Connection, frame: Frame, version: DatasetVersion, config: TrainConfig
) -> TrainData:
    target = str(config.target or version.target)
    task = _task(config, frame.columns[target], version.kind)
    frame = _target_split(frame, target, config, task == "classification")
    encoded, auto_steps, names = _encode_features(frame, version, target)
    groups = _feature_groups(auto_steps, names)
    x = np.column_stack([encoded[n] for n in names]).astype(np.float32)
    data = TrainData(
        task=task,
        x={n: x[frame.split == i] for i, n in enumerate(SPLITS)},
        y={},
        classes=None,
        feature_names=names,
        groups=groups,
        pipeline=pipeline_chain(conn, version) + auto_steps,
        target=target,
    )
    _split_targets(data, frame.columns[target], frame.split)
    return data


def _encode_features(
    frame: Frame, version: DatasetVersion, target: str
) -> tuple[steps.Columns, list[dict[str, Any]], list[str]]:
    # Columns holding personal data are never features: their values would be learnt
    # (memorised) and, one-hot encoded, written into the model's pipeline.
    skip = {target, version.time_column} | {c.name for c in version.columns if "pii" in c.stats}
    numeric = [n for n, d in frame.dtypes.items() if d == "numeric" and n not in skip]
    categorical = [n for n, d in frame.dtypes.items() if d == "categorical" and n not in skip]
    if not numeric and not categorical:
        raise InvalidOptionError(f"{version.ref} has no numeric or categorical feature columns")
    fit_rows = frame.split == 0
    inputs = numeric + categorical
    auto = [{"step": "input", "columns": [{"name": n, "dtype": frame.dtypes[n]} for n in inputs]}]
    columns = {n: frame.columns[n] for n in inputs}
    for fit in (
        lambda c: steps.fit_fill(c, inputs, "median", fit_rows),
        lambda c: steps.fit_scale(c, numeric, "standard", fit_rows),
        lambda c: steps.fit_onehot(c, categorical, fit_rows),
    ):
        step = fit(columns)
        columns = steps.apply_steps([step], columns)
        auto.append(step)
    names = [n for n in columns if n in numeric or n not in inputs]
    auto.append({"step": "features", "names": names})
    for name in names:
        columns[name] = np.nan_to_num(columns[name].astype(np.float64))
    return columns, auto, names


def _feature_groups(auto_steps: list[dict[str, Any]], names: list[str]) -> dict[str, list[int]]:
    onehot = next(s for s in auto_steps if s["step"] == "onehot")["columns"]
    groups: dict[str, list[int]] = {}
    for index, name in enumerate(names):
        source = next((c for c in onehot if name.startswith(f"{c}=")), name)
        groups.setdefault(source, []).append(index)
    return groups


# -- images ------------------------------------------------------------------------------


def _images(
    conn: sqlite3.Connection, frame: Frame, version: DatasetVersion, config: TrainConfig
) -> TrainData:
    target = str(config.target or version.target or "label")
    frame = _target_split(frame, target, config, classify=True)
    blobs = [b for batch in store.iter_images(conn, version) for b in batch]
    pictures = [images.decode_image(blobs[int(r)]) for r in frame.rows]
    mode, size = images.image_mode(pictures), images.common_size(pictures)
    raw = np.stack([images.pixels(p, mode, size) for p in pictures])
    step = images.fit_image_step(raw[frame.split == 0], mode, size)
    x = images.normalize(raw, step)
    data = TrainData(
        task="classification",
        x={n: x[frame.split == i] for i, n in enumerate(SPLITS)},
        y={},
        classes=None,
        feature_names=[],
        groups={},
        pipeline=[step],
        target=target,
    )
    _split_targets(data, frame.columns[target], frame.split)
    return data


# -- time series -------------------------------------------------------------------------


def _timeseries(frame: Frame, version: DatasetVersion, config: TrainConfig) -> TrainData:
    target = config.target or version.target or _first_value_column(frame, version)
    if frame.dtypes.get(target) != "numeric":
        raise InvalidOptionError(f"--target {target!r}: a forecast needs a numeric column")
    _check_one_row_per_time(frame, version)
    series = _interpolated(frame.columns[target].astype(np.float64))
    split = (
        frame.split
        if frame.has_split()
        else assign_split(len(series), DEFAULT_FRACTIONS, 0, ordered=True)
    )
    n_train = int((split == 0).sum())
    window = config.window or min(24, max(2, n_train // 8))
    if window + config.horizon >= n_train:
        raise InvalidOptionError(
            f"--window {window} with --horizon {config.horizon} does not fit the "
            f"{n_train} training points of {version.ref}; use a shorter window"
        )
    step = windowing.fit_window_step(series, split == 0, target, window, config.horizon)
    scaled = windowing.scale(series, step)
    ends = windowing.window_ends(len(series), step)
    x = windowing.windows(scaled, ends, step)
    last = x[:, -1, 0]
    codes = split[ends]
    return TrainData(
        task="forecasting",
        x={n: x[codes == i] for i, n in enumerate(SPLITS)},
        y={n: scaled[ends][codes == i] for i, n in enumerate(SPLITS)},
        classes=None,
        feature_names=[target],
        groups={},
        pipeline=[step],
        target=target,
        target_mean=step["mean"],
        target_std=step["std"],
        baseline_x={n: last[codes == i] for i, n in enumerate(SPLITS)},
    )


def _check_one_row_per_time(frame: Frame, version: DatasetVersion) -> None:
    # Windows over repeated timestamps would mix two readings of one moment into a
    # "sequence": refuse, naming the column and a repeated time (the import warned).
    times = frame.columns.get(version.time_column or "")
    if times is None or len(times) < 2:
        return
    labels = np.array([str(t) for t in times], dtype=object)
    values, counts = np.unique(labels, return_counts=True)
    repeated = int((counts - 1).sum())
    if repeated:
        raise InvalidOptionError(
            f"{version.ref}: time column {version.time_column!r} repeats {repeated:,} "
            f"timestamp(s) (the first: {values[counts > 1][0]}); a forecast needs one row "
            "per time: merge the rows of each time (or drop the duplicates) first"
        )


def _first_value_column(frame: Frame, version: DatasetVersion) -> str:
    for name, dtype in frame.dtypes.items():
        if dtype == "numeric" and name != version.time_column:
            return name
    raise InvalidOptionError(f"{version.ref} has no numeric column to forecast")


def _interpolated(values: np.ndarray) -> np.ndarray:
    missing = np.isnan(values)
    if missing.all():
        raise InvalidOptionError("the series has no values")
    if missing.any():
        index = np.arange(len(values))
        values = values.copy()
        values[missing] = np.interp(index[missing], index[~missing], values[~missing])
    return values
