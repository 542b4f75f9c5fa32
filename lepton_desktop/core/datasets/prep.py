"""Preparing a dataset version: dedupe, fill, scale, one-hot encode and split.

Every preparation writes a NEW version whose parent is the source version; the source
is never changed. The work runs in this order, each part optional:

1. **dedupe**: drop rows equal in every column to an earlier row (images: identical
   encoded bytes). It runs first, so duplicates do not weigh on fitted values.
2. **drop rows**: with any fill, rows whose *target* is missing are dropped (a label
   is never invented); with ``fill="drop"``, rows with any missing cell are dropped.
   A time series instead keeps a regular time grid: missing steps are inserted and
   its target and values filled in time (``fill_time``: linear, time or ffill; see
   :mod:`.gaps`), so no row is dropped unless ``fill="drop"`` asks for it.
3. **split** train/val/test with a seed: stratified by the target for classification,
   in time order for time series (the first 70% is train...), random otherwise. A
   split the source already has is kept unless a new one is asked for.
4. **fill** missing feature cells: numeric columns with the mean, median, mode or
   zero; other columns always with their most frequent value (the only fill that
   means something for text). A non-numeric column with no value at all stays empty.
5. **scale** numeric feature columns (standard or min-max): never the target, the
   time column, or 0/1 columns made by one-hot encoding.
6. **one-hot** encode categorical feature columns (not the target, not free text).

Fill values, means/stds, mins/maxes and categories are fitted on the train split
only, so nothing leaks from validation or test rows (on all rows when there is no
split). They are stored as JSON steps in the version's ``pipeline``
(:mod:`~lepton_desktop.core.preprocessing.tabular`), so serving replays them on raw
records. Image datasets take dedupe and split only.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from lepton_desktop.core.datasets.frame import (
    Frame,
    duplicated_images,
    duplicated_rows,
    exact_column,
    load_frame,
    write_frame,
)
from lepton_desktop.core.datasets.gaps import FILL_TIME_METHODS, fill_in_time
from lepton_desktop.core.datasets.pii_prep import check_actions, planned_actions, treat
from lepton_desktop.core.datasets.splits import assign_split, is_classification, small_groups
from lepton_desktop.core.entities import SPLIT_NAMES, DatasetVersion
from lepton_desktop.core.errors import InvalidOptionError
from lepton_desktop.core.preprocessing import tabular as steps
from lepton_desktop.core.progress import NullReporter, Reporter
from lepton_desktop.core.secretbox import hash_key
from lepton_desktop.core.store import datasets as store

if TYPE_CHECKING:
    import sqlite3

FILL_METHODS = ("mean", "median", "mode", "zero", "drop")
SCALE_METHODS = ("standard", "minmax")


@dataclasses.dataclass(frozen=True)
class PrepOptions:
    """What to do to a version. ``scale="none"`` means no scaling (as the CLI says).

    Attributes:
        dedupe: remove duplicate rows (first).
        fill: mean, median, mode, zero or drop; None leaves missing cells alone.
        scale: standard or minmax; None (or "none") does not scale.
        onehot: one-hot encode categorical feature columns.
        split: (train, val, test) fractions summing to 1; None keeps the source's split.
        seed: seed of the random split.
        fill_time: how a time series' fill fills its target and values in time
            (linear, time or ffill; see :mod:`.gaps`); its rows are never dropped.
        pii: drop, hash or mask every column flagged as personal data (first).
        pii_columns: column -> drop, hash, mask or keep, over ``pii``.
    """

    dedupe: bool = False
    fill: str | None = None
    scale: str | None = None
    onehot: bool = False
    split: tuple[float, float, float] | None = None
    seed: int = 0
    fill_time: str = "linear"
    pii: str | None = None
    pii_columns: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.scale == "none":
            object.__setattr__(self, "scale", None)
        if self.split is not None and not isinstance(self.split, tuple):
            object.__setattr__(self, "split", tuple(self.split))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for a job's arguments)."""
        data = dataclasses.asdict(self)
        data["pii_columns"] = dict(self.pii_columns)
        data["split"] = list(self.split) if self.split is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PrepOptions:
        """Rebuild options from :meth:`to_dict`'s output.

        Raises:
            InvalidOptionError: an unknown key.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidOptionError(f"unknown preparation options: {', '.join(unknown)}")
        return cls(**data)

    def validate(self, version: DatasetVersion) -> None:
        """Refuse impossible options for ``version`` before anything is written.

        Fill applies where it can (see the module docs), so ``fill="mean"`` on a table
        with only text columns is fine. Scaling needs a numeric feature column and
        one-hot encoding a categorical one; image datasets take dedupe and split only.

        Raises:
            InvalidOptionError: with a message that names the option and the problem.
        """
        self._check_values()
        planned_actions(version, self.pii, self.pii_columns)
        if version.kind == "images":
            asked = [
                n
                for n, on in (("fill", self.fill), ("scale", self.scale), ("one-hot", self.onehot))
                if on
            ]
            if asked:
                raise InvalidOptionError(
                    f"{version.ref} is an image dataset: only dedupe and split apply, "
                    f"not {' or '.join(asked)} (those are for tables)"
                )
            return
        if self.scale and not scalable_columns(version):
            raise InvalidOptionError(
                f"{version.ref}: no numeric feature column to scale (the target and the "
                "time column are never scaled)"
            )
        if self.onehot and not categorical_columns(version):
            raise InvalidOptionError(
                f"{version.ref}: no categorical feature column to one-hot encode"
            )

    def _check_values(self) -> None:
        for flag in ("dedupe", "onehot"):
            if not isinstance(getattr(self, flag), bool):
                raise InvalidOptionError(
                    f"{flag} must be true or false, not {getattr(self, flag)!r}"
                )
        if self.fill is not None and self.fill not in FILL_METHODS:
            raise InvalidOptionError(
                f"unknown fill {self.fill!r}; use one of {', '.join(FILL_METHODS)}"
            )
        if self.fill_time not in FILL_TIME_METHODS:
            raise InvalidOptionError(
                f"unknown fill-time {self.fill_time!r}; use one of {', '.join(FILL_TIME_METHODS)}"
            )
        if self.scale is not None and self.scale not in SCALE_METHODS:
            raise InvalidOptionError(f"unknown scale {self.scale!r}; use standard, minmax or none")
        if self.split is not None:
            _check_split(self.split)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise InvalidOptionError(f"the seed must be an integer, not {self.seed!r}")
        check_actions(self.pii, self.pii_columns)
        if not (
            self.dedupe
            or self.fill
            or self.scale
            or self.onehot
            or self.split
            or self.pii
            or self.pii_columns
        ):
            raise InvalidOptionError(
                "nothing to do: choose at least one of dedupe, fill, scale, one-hot, split or pii"
            )


def _check_split(split: tuple[Any, ...]) -> None:
    numbers = all(isinstance(p, int | float) and not isinstance(p, bool) for p in split)
    if (
        not numbers
        or len(split) != 3
        or any(not p >= 0 for p in split)
        or split[0] <= 0
        or abs(sum(split) - 1) > 1e-6
    ):
        raise InvalidOptionError(
            f"split {split!r}: give three fractions (train, val, test), train > 0, each "
            "≥ 0, summing to 1 (e.g. 0.7, 0.15, 0.15)"
        )


@dataclasses.dataclass(frozen=True)
class PrepPreview:
    """What a preparation would do, computed without writing anything."""

    rows_before: int
    rows_after: int
    missing_before: int
    missing_after: int


def personal_columns(version: DatasetVersion) -> set[str]:
    """Columns flagged as personal data and not prepared away: never encoded or scaled."""
    return {c.name for c in version.columns if "pii" in c.stats}


def feature_columns(version: DatasetVersion) -> list[str]:
    """Every column except the target and the time column."""
    return [c.name for c in version.columns if c.name not in (version.target, version.time_column)]


def scalable_columns(version: DatasetVersion) -> list[str]:
    """Numeric feature columns that scaling would touch (not one-hot 0/1 columns)."""
    features = set(feature_columns(version)) - personal_columns(version)
    return [
        c.name
        for c in version.columns
        if c.name in features and c.dtype == "numeric" and "onehot" not in c.stats
    ]


def categorical_columns(version: DatasetVersion) -> list[str]:
    """Categorical feature columns that one-hot encoding would replace."""
    # (a flagged column one-hot encoded would write its values into every model's pipeline)
    features = set(feature_columns(version)) - personal_columns(version)
    return [c.name for c in version.columns if c.name in features and c.dtype == "categorical"]


def preview(
    conn: sqlite3.Connection, version: DatasetVersion, options: PrepOptions
) -> PrepPreview:
    """Row and missing-cell counts before and after ``options``; writes nothing.

    Raises:
        InvalidOptionError: the options do not fit ``version`` (see PrepOptions.validate).
    """
    options.validate(version)
    frame = load_frame(conn, version, NullReporter())
    result, _, _ = _transform(conn, version, frame, options)
    return PrepPreview(version.n_rows, len(result), frame.missing(), result.missing())


def prepare(
    conn: sqlite3.Connection,
    version: DatasetVersion,
    options: PrepOptions,
    *,
    job_id: int | None = None,
    reporter: Reporter | None = None,
) -> DatasetVersion:
    """Prepare ``version`` into a new version of the same dataset (parent = ``version``).

    Args:
        conn: the project's connection.
        version: the source version (left unchanged).
        options: what to do.
        job_id: the job doing the work, so a dead worker's version can be cleaned up.
        reporter: receives progress (rows read, then rows written) and may cancel.

    Returns:
        The new, ready version, with ``operations`` describing what was done and
        ``pipeline`` holding the fitted steps.

    Raises:
        InvalidOptionError: impossible options, or no rows would be left; nothing is
            written.
        CancelledError: the reporter asked to stop; nothing is left in the project.
    """
    reporter = reporter or NullReporter()
    options.validate(version)
    frame = load_frame(conn, version, reporter)
    result, operations, fitted = _transform(conn, version, frame, options)
    if len(result) == 0:
        raise InvalidOptionError(
            f"{version.ref}: no rows would be left ({_describe(operations)}); nothing was written"
        )
    return write_frame(
        conn,
        version,
        result,
        operations=operations,
        pipeline=fitted,
        job_id=job_id,
        reporter=reporter,
    )


def pipeline_chain(conn: sqlite3.Connection, version: DatasetVersion) -> list[dict[str, Any]]:
    """The full pipeline of ``version``, ready for :func:`~.pipeline.apply_pipeline`.

    The steps stored along the parent chain, oldest first, between an ``input`` step
    for the imported (root) version's feature columns and a ``features`` step for
    ``version``'s; so a version that was never prepared still says which raw columns
    its features are. Image datasets have no tabular steps: their list is empty.

    Raises:
        NotFoundError: a parent is missing from the project.
    """
    chain = [version]
    while chain[-1].parent_id is not None:
        chain.append(store.get_version(conn, chain[-1].parent_id))
    if version.kind == "images":
        return []
    root = chain[-1]
    first = {
        "step": "input",
        "columns": [{"name": n, "dtype": root.column(n).dtype} for n in feature_columns(root)],
    }
    stored = [step for v in reversed(chain) for step in v.pipeline]
    return [first, *stored, {"step": "features", "names": feature_columns(version)}]


def _describe(operations: list[dict[str, Any]]) -> str:
    parts = [f"{op['op']} removed {op['removed']}" for op in operations if op.get("removed")]
    return ", ".join(parts) or "the source has no rows"


# -- the transformation ----------------------------------------------------------------


def _transform(
    conn: sqlite3.Connection, version: DatasetVersion, frame: Frame, options: PrepOptions
) -> tuple[Frame, list[dict[str, Any]], list[dict[str, Any]]]:
    operations: list[dict[str, Any]] = []
    plan = planned_actions(version, options.pii, options.pii_columns)
    if plan:
        key = hash_key() if "hash" in plan.values() else b""
        exact = {
            name: exact_column(conn, version, name)
            for name, action in plan.items()
            if action != "drop" and frame.columns[name].dtype.kind == "f"
        }
        frame = dataclasses.replace(frame, columns={**frame.columns, **exact})
        frame, version, operation = treat(frame, version, plan, key)
        operations.append(operation)
    if options.dedupe:
        dupes = (
            duplicated_images(conn, version)
            if version.kind == "images"
            else duplicated_rows(frame)
        )
        frame = frame.take(~dupes)
        operations.append({"op": "dedupe", "removed": int(dupes.sum())})
    if options.fill and version.kind == "timeseries" and options.fill != "drop":
        # A series keeps its grid: gaps filled in time, no row dropped (see gaps).
        frame, operation = fill_in_time(frame, version, options.fill_time)
        operations.append(operation)
    elif options.fill:
        frame = _drop_missing(frame, version, options.fill, operations)
    if options.split:
        frame = _split(frame, version, options, operations)
    if version.kind == "images":
        return frame, operations, []
    return _fit_and_apply(frame, version, options, operations)


def _drop_missing(
    frame: Frame, version: DatasetVersion, method: str, operations: list[dict[str, Any]]
) -> Frame:
    names = list(frame.columns) if method == "drop" else [version.target]
    names = [n for n in names if n in frame.columns]
    if not names:
        return frame
    drop = np.zeros(len(frame), dtype=bool)
    for name in names:
        drop |= steps.missing_mask(frame.columns[name])
    if method == "drop" or drop.any():
        operations.append(
            {
                "op": "drop_missing",
                "removed": int(drop.sum()),
                "columns": "all" if method == "drop" else names,
            }
        )
    return frame.take(~drop)


def _split(
    frame: Frame, version: DatasetVersion, options: PrepOptions, operations: list[dict[str, Any]]
) -> Frame:
    assert options.split is not None
    target = frame.columns.get(version.target or "")
    if version.kind == "timeseries":
        strategy, groups = "time", None
    elif target is not None and is_classification(target):
        import pandas as pd  # here, not at the top: training imports this module too

        strategy, groups = "stratified", pd.factorize(target, use_na_sentinel=False)[0]
    else:
        strategy, groups = "random", None
    split = assign_split(
        len(frame), options.split, options.seed, groups=groups, ordered=strategy == "time"
    )
    counts = {name: int((split == i).sum()) for i, name in enumerate(SPLIT_NAMES)}
    operation = {
        "op": "split",
        "fractions": list(options.split),
        "seed": options.seed,
        "strategy": strategy,
        "counts": counts,
    }
    if groups is not None:
        operation |= _stratify_warning(groups, options.split, str(version.target))
        if small_groups(groups, options.split) == len(np.unique(groups)):
            operation["strategy"] = "random"  # every class was pooled
    operations.append(operation)
    return dataclasses.replace(frame, split=split)


def _stratify_warning(
    groups: np.ndarray, fractions: tuple[float, float, float], target: str
) -> dict[str, str]:
    # Classes too small to be divided on their own are split at random together
    # (splits.assign_split); say so, and say it loudly when no label repeats at all.
    small = small_groups(groups, fractions)
    if not small:
        return {}
    rows = len(groups)
    if len(np.unique(groups)) == rows:
        return {
            "warning": (
                f"target {target!r} holds a different value in every row ({rows:,} of {rows:,}): "
                "the split is random, not stratified, and no class can be learnt from it (is it "
                "an id or free text?)"
            )
        }
    return {
        "warning": (
            f"{small:,} class(es) of target {target!r} have too few rows to be divided "
            "train/val/test on their own; their rows were split at random together"
        )
    }


def _fit_and_apply(
    frame: Frame, version: DatasetVersion, options: PrepOptions, operations: list[dict[str, Any]]
) -> tuple[Frame, list[dict[str, Any]], list[dict[str, Any]]]:
    features = feature_columns(version)
    fit_rows = frame.split == 0 if frame.has_split() else np.ones(len(frame), dtype=bool)
    fitted_on = "train" if frame.has_split() else "all"
    fitted = [
        {"step": "input", "columns": [{"name": n, "dtype": frame.dtypes[n]} for n in features]}
    ]
    columns = frame.columns
    if options.fill:
        step = steps.fit_fill(columns, features, options.fill, fit_rows)
        if options.fill != "drop":  # "drop_missing" already says what drop did
            operations.append(_fill_operation(columns, step, fitted_on))
        columns = steps.apply_steps([step], columns)
        fitted.append(_kept_fill(step, version))
    if options.scale:
        names = scalable_columns(version)
        step = steps.fit_scale(columns, names, options.scale, fit_rows)
        columns = steps.apply_steps([step], columns)
        fitted.append(step)
        operations.append(
            {"op": "scale", "method": options.scale, "columns": names, "fitted_on": fitted_on}
        )
    frame = dataclasses.replace(frame, columns=columns)
    if options.onehot:
        frame = _onehot(frame, categorical_columns(version), fit_rows, fitted, operations)
        operations[-1]["fitted_on"] = fitted_on
    target_time = (version.target, version.time_column)
    fitted.append(
        {"step": "features", "names": [n for n in frame.columns if n not in target_time]}
    )
    return frame, operations, fitted


def _kept_fill(step: dict[str, Any], version: DatasetVersion) -> dict[str, Any]:
    # The fill of a free-text or personal-data column is one training row's value (the
    # most frequent of values that rarely repeat): such columns are never model
    # features, so the pipeline every model and export carries keeps no fill for them.
    private = personal_columns(version) | {c.name for c in version.columns
                                           if c.dtype == "text"}  # fmt: skip
    if "values" not in step or not private & set(step["values"]):
        return step
    return {**step, "values": {k: v for k, v in step["values"].items() if k not in private}}


def _fill_operation(
    columns: steps.Columns, step: dict[str, Any], fitted_on: str
) -> dict[str, Any]:
    filled = {name: int(steps.missing_mask(columns[name]).sum()) for name in step["values"]}
    filled = {name: count for name, count in filled.items() if count}
    return {
        "op": "fill",
        "method": step["method"],
        "filled": sum(filled.values()),
        "columns": filled,
        "fitted_on": fitted_on,
    }


def _onehot(
    frame: Frame,
    names: list[str],
    fit_rows: np.ndarray,
    fitted: list[dict[str, Any]],
    operations: list[dict[str, Any]],
) -> Frame:
    step = steps.fit_onehot(frame.columns, names, fit_rows)
    columns = steps.apply_steps([step], frame.columns)
    dtypes = {n: frame.dtypes.get(n, "numeric") for n in columns}
    extra = dict(frame.extra)
    for name, categories in step["columns"].items():
        for category in categories:
            extra[steps.onehot_name(name, category)] = {"onehot": name}
    fitted.append(step)
    operations.append({"op": "onehot", "columns": {n: len(c) for n, c in step["columns"].items()}})
    return dataclasses.replace(frame, columns=columns, dtypes=dtypes, extra=extra)
