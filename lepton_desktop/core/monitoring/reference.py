"""A model version's drift reference: its training split, profiled once, kept as JSON.

The rows a version trained on are found from its lineage (the dataset version it
records, the seed of its run: the same rows and split training used) and put back in
the units clients send: the scaling and one-hot steps the dataset version was
prepared with are undone (a cell prep filled stays filled). The profile
(:mod:`lepton_desktop.core.store.drift_sketch` reads it) holds per feature its bins
and the training counts on them, its range and spread; the model's prediction on the
same rows is profiled from the training labels (classes) or targets (values); and an
outlier model (the Mahalanobis distance on the numeric features, its mean and inverse
covariance as plain numbers, never a pickle) with the distance that 0.1% of the
training rows exceed. Time series are profiled by the last value and the mean of each
window; images by their brightness, contrast, width and height.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lepton_desktop.core.datasets import prep
from lepton_desktop.core.datasets.frame import load_frame
from lepton_desktop.core.errors import InvalidOptionError, LeptonError, NotFoundError
from lepton_desktop.core.preprocessing import tabular as steps
from lepton_desktop.core.progress import NullReporter
from lepton_desktop.core.store import datasets as dataset_store
from lepton_desktop.core.store import drift as store
from lepton_desktop.core.store import drift_sketch
from lepton_desktop.core.store import models as model_store
from lepton_desktop.core.training import data as training_data
from lepton_desktop.core.training.config import TrainConfig

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext
    from lepton_desktop.core.entities import DatasetVersion, ModelVersion

#: Numeric features with more distinct reference values get this many quantile bins.
QUANTILE_BINS = 200
#: Edges beyond a feature's training range, as multiples of the range: a served value
#: outside it is still placed within a few percent of where it lies.
EXTENSION = (0.001, 0.003, 0.01, 0.03, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 100.0)
#: References with at most this many rows (or values) are binned on every value.
SMALL_REFERENCE = 1000
#: Categorical columns with more categories than this are text, not profiled.
MAX_CATEGORIES = 1000
#: The outlier threshold: the training rows' distance at this quantile.
OUTLIER_QUANTILE = 0.999
_IMAGE_SOURCES = ("brightness", "contrast", "width", "height")


class ReferenceUnavailable(LeptonError):
    """A model version's training data cannot be found (deleted, or never recorded)."""


def ensure(ctx: ProjectContext, model: str, version: int) -> dict[str, Any]:
    """The profile of ``model:version``, built and stored (with the older rows) if missing.

    Raises:
        ReferenceUnavailable: the version or its training data is not in the project.
    """
    profile = store.reference(ctx.conn, model, version)
    if profile is None:
        try:
            profile = build(ctx, model, version)
        except ReferenceUnavailable as exc:
            # A version's lineage never changes: remember why, rather than load its
            # data again on every read.
            profile = {"unavailable": str(exc)}
        store.put_reference(ctx.conn, model, version, profile)
        profile = store.reference(ctx.conn, model, version) or profile
    if "unavailable" in profile:
        raise ReferenceUnavailable(profile["unavailable"])
    return profile


def ensure_served(ctx: ProjectContext, refs: list[str]) -> list[str]:
    """Profile the versions ``refs`` name (none: every model's newest), before traffic.

    The serve worker calls this once its server answers, so the writer sketches the
    requests as they arrive. A version whose training data is gone is skipped (its
    reason returned); any version is profiled later on demand all the same.
    """
    skipped = []
    if refs:
        versions = []
        for ref in refs:
            try:
                versions.append(model_store.resolve(ctx.conn, ref))
            except NotFoundError as exc:
                skipped.append(str(exc))
    else:
        newest: dict[str, ModelVersion] = {}
        for registered in model_store.list_versions(ctx.conn, include_archived=False):
            newest[registered.name] = registered  # ordered by version: the last wins
        versions = list(newest.values())
    for registered in versions:
        try:
            ensure(ctx, registered.name, registered.version)
        except ReferenceUnavailable as exc:
            skipped.append(str(exc))
        # The quality estimator (CBPE) runs the model on its val and test rows: here,
        # where torch is loaded anyway, not on a reader's thread.
        from lepton_desktop.core.monitoring import cbpe

        cbpe.ensure(ctx, registered.name, registered.version, build_missing=True)
    return skipped


def build(ctx: ProjectContext, model: str, version: int) -> dict[str, Any]:
    """Profile ``model:version``'s training split (see the module docstring).

    Raises:
        ReferenceUnavailable: as :func:`ensure`.
    """
    try:
        registered = model_store.resolve(ctx.conn, f"{model}:{version}")
        if registered.dataset_version_id is None:
            raise NotFoundError(f"{model}:{version} records no dataset version")
        dataset = dataset_store.get_version(ctx.conn, registered.dataset_version_id)
    except NotFoundError as exc:
        raise ReferenceUnavailable(f"no training data for {model}:{version}: {exc}") from None
    config = TrainConfig.from_dict(registered.params.get("config", {}))
    try:
        if dataset.kind == "timeseries":
            profile = _timeseries(ctx, registered, dataset, config)
        elif dataset.kind == "images":
            profile = _images(ctx, registered, dataset, config)
        else:
            profile = _tabular(ctx, registered, dataset, config)
    except InvalidOptionError as exc:
        raise ReferenceUnavailable(f"{model}:{version}: {exc}") from None
    profile["reference"] = {"dataset": dataset.ref, "split": "train"}
    return profile


# -- the three kinds -------------------------------------------------------------------


def _tabular(ctx: ProjectContext, registered: ModelVersion, dataset: DatasetVersion,
             config: TrainConfig) -> dict[str, Any]:  # fmt: skip
    target = str(registered.params.get("target") or config.target or dataset.target)
    classify = registered.task == "classification"
    frame = load_frame(ctx.conn, dataset, NullReporter())
    frame = training_data.split_as_trained(frame, target, config, classify)
    train = frame.take(frame.split == 0)
    raw = steps.undo_steps(prep.pipeline_chain(ctx.conn, dataset), train.columns)
    inputs = next(s for s in registered.pipeline if s.get("step") == "input")["columns"]
    features = []
    for column in inputs:
        values = raw.get(column["name"])
        if values is None:
            continue
        spec = _spec(column["name"], column["dtype"], values)
        if spec is not None:
            features.append(spec)
    profile = {"format": 1, "kind": "tabular", "features": features,
               "prediction": _prediction(registered, train.columns[target]),
               "rows": len(train)}  # fmt: skip
    profile["outlier"] = _outlier(profile, raw)
    return profile


def _timeseries(ctx: ProjectContext, registered: ModelVersion, dataset: DatasetVersion,
                config: TrainConfig) -> dict[str, Any]:  # fmt: skip
    step = next(s for s in registered.pipeline if s.get("step") == "window")
    column, window = str(step["column"]), int(step["window"])
    frame = load_frame(ctx.conn, dataset, NullReporter())
    series = training_data.interpolated(frame.columns[column].astype(np.float64))
    split = frame.split if frame.has_split() else _ordered_split(len(series))
    train = series[split == 0]
    ends = np.arange(window, len(train) + 1)  # each training window's end (exclusive)
    cumulative = np.concatenate([[0.0], np.cumsum(train)])
    last, mean = train[ends - 1], (cumulative[ends] - cumulative[ends - window]) / window
    features = [_numeric(f"{column} (last)", last, "last"),
                _numeric(f"{column} (window mean)", mean, "mean")]  # fmt: skip
    profile = {"format": 1, "kind": "timeseries", "series_column": column, "window": window,
               "features": features, "rows": len(ends),
               "prediction": _numeric("prediction", train, "prediction")}  # fmt: skip
    profile["outlier"] = _outlier(profile, {"last": last, "mean": mean})
    return profile


def _images(ctx: ProjectContext, registered: ModelVersion, dataset: DatasetVersion,
            config: TrainConfig) -> dict[str, Any]:  # fmt: skip
    target = str(registered.params.get("target") or config.target or dataset.target or "label")
    frame = load_frame(ctx.conn, dataset, NullReporter())
    frame = training_data.split_as_trained(frame, target, config, classify=True)
    train = frame.take(frame.split == 0)
    wanted = {int(r) for r in train.rows}
    stats, row = [], 0
    for batch in dataset_store.iter_images(ctx.conn, dataset):
        for blob in batch:
            if row in wanted:
                stats.append(drift_sketch.image_stats(bytes(blob)))
            row += 1
    table = np.array(stats, dtype=np.float64).reshape(-1, 4)
    measures = {source: table[:, i] for i, source in enumerate(_IMAGE_SOURCES)}
    features = [_numeric(f"image {s}", measures[s], s) for s in _IMAGE_SOURCES]
    profile = {"format": 1, "kind": "images", "features": features, "rows": len(table),
               "prediction": _prediction(registered, train.columns[target])}  # fmt: skip
    profile["outlier"] = _outlier(profile, measures)
    return profile


def _ordered_split(n: int) -> np.ndarray:
    from lepton_desktop.core.datasets.splits import assign_split

    return assign_split(n, training_data.DEFAULT_FRACTIONS, 0, ordered=True)


# -- feature profiles --------------------------------------------------------------------


def _spec(name: str, dtype: str, values: np.ndarray) -> dict[str, Any] | None:
    if dtype == "numeric":
        return _numeric(name, values.astype(np.float64), "field")
    if dtype == "categorical":
        return _categorical(name, [drift_sketch.category(v) for v in values], "field")
    return None  # free text: not profiled


def _numeric(name: str, values: np.ndarray, source: str) -> dict[str, Any]:
    x = np.asarray(values, dtype=np.float64)
    finite = x[np.isfinite(x)]
    if not len(finite):
        finite = np.zeros(1)
    points = np.unique(finite)
    small = len(finite) <= SMALL_REFERENCE or len(points) <= 20
    spec: dict[str, Any] = {
        "name": name, "dtype": "numeric", "source": source,
        "mode": "points" if small else "bins",
        "edges": (points if small else _quantile_edges(finite)).tolist(),
        "ref_missing": int(len(x) - np.isfinite(x).sum()), "n_unique": len(points),
        "min": float(finite.min()), "max": float(finite.max()),
        "mean": float(finite.mean()), "std": float(np.std(finite)),
    }  # fmt: skip
    binned = drift_sketch.bin_values(spec, finite)
    spec["ref_counts"] = np.bincount(binned, minlength=drift_sketch.slot_count(spec) - 1)[
        : drift_sketch.slot_count(spec) - 1
    ].tolist()
    spec["centers"] = _centers(spec, finite, binned)
    return spec


def _quantile_edges(finite: np.ndarray) -> np.ndarray:
    inner = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, QUANTILE_BINS + 1)))
    low, high = float(finite.min()), float(finite.max())
    span = (high - low) or 1.0
    below = [low - span * f for f in reversed(EXTENSION)]
    above = [high + span * f for f in EXTENSION]
    # The top edge moves just past the maximum, so the maximum counts inside the range.
    inner[-1] = np.nextafter(high, np.inf)
    return np.concatenate([below, inner, above])


def _centers(spec: dict[str, Any], finite: np.ndarray, binned: np.ndarray) -> list[float]:
    """Where each bin's mass sits: the training values' mean, else the bin's middle."""
    edges = np.asarray(spec["edges"], dtype=np.float64)
    count = drift_sketch.slot_count(spec) - 1
    if spec["mode"] == "points":
        gaps = np.concatenate([[edges[0]], edges, [edges[-1]]])
        span = (edges[-1] - edges[0]) or 1.0
        gaps[0], gaps[-1] = edges[0] - 0.1 * span, edges[-1] + 0.1 * span
        middle = (gaps[:-1] + gaps[1:]) / 2
        centers = np.empty(count)
        centers[0::2], centers[1::2] = middle, edges
        return centers.tolist()
    bounds = np.concatenate([[edges[0] - (edges[1] - edges[0])], edges,
                             [edges[-1] + (edges[-1] - edges[-2])]])  # fmt: skip
    centers = (bounds[:-1] + bounds[1:]) / 2
    sums = np.bincount(binned, weights=finite, minlength=count)[:count]
    counts = np.bincount(binned, minlength=count)[:count]
    filled = counts > 0
    centers[filled] = sums[filled] / counts[filled]
    return centers.tolist()


def _categorical(name: str, values: list[str | None], source: str) -> dict[str, Any] | None:
    present = [v for v in values if v is not None]
    categories, counts = np.unique(np.array(present, dtype=object).astype(str),
                                   return_counts=True)  # fmt: skip
    if len(categories) > MAX_CATEGORIES:
        return None
    return {"name": name, "dtype": "categorical", "source": source,
            "categories": categories.tolist(), "ref_counts": [*counts.tolist(), 0],
            "ref_missing": len(values) - len(present), "n_unique": len(categories)}  # fmt: skip


def _prediction(registered: ModelVersion, target: np.ndarray) -> dict[str, Any] | None:
    """The training labels (classes) or targets (values), to compare served answers with."""
    if registered.task == "classification":
        spec = _categorical("prediction", [drift_sketch.category(v) for v in target], "prediction")
        return spec
    return _numeric("prediction", np.asarray(target, dtype=np.float64), "prediction")


def _outlier(profile: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any] | None:
    """Mahalanobis distance on the numeric features, fitted on the training rows."""
    numeric = [s for s in profile["features"] if s["dtype"] == "numeric"]
    if not numeric:
        return None
    source = {s["name"]: s["source"] if s["source"] != "field" else s["name"] for s in numeric}
    x = np.column_stack([np.asarray(raw[source[s["name"]]], dtype=np.float64) for s in numeric])
    mean = np.nanmean(x, axis=0) if len(x) else np.zeros(len(numeric))
    x = np.where(np.isnan(x), mean, x)
    if len(x) < 2:
        return None
    covariance = np.atleast_2d(np.cov(x, rowvar=False))
    # A small ridge keeps constant or collinear columns from dividing by zero.
    ridge = 1e-9 * max(float(np.trace(covariance)), 1e-12)
    inverse = np.linalg.pinv(covariance + ridge * np.eye(len(numeric)))
    centred = x - mean
    distance = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", centred, inverse, centred), 0, None))
    return {"method": "mahalanobis", "features": [s["name"] for s in numeric],
            "mean": mean.tolist(), "inv_cov": inverse.tolist(),
            "threshold": float(np.quantile(distance, OUTLIER_QUANTILE))}  # fmt: skip
