"""Drift of a model's served inputs and predictions over a window, from the sketches.

A window's served counts are the sum of the per-minute (or, for windows of two days or
more, per-hour) sketches the log's writers kept (:mod:`lepton_desktop.core.store.drift`),
so a window over a million requests costs a few hundred small rows and arithmetic.
Each feature gets Evidently's default test on those counts (:mod:`.drift_tests`), its
PSI and KS statistic, the shares of missing and unseen values, and the histogram the
Monitoring tab draws; the model's answers get the same against the training labels
(prediction drift). The dataset verdict is Evidently's: drift when at least half of
the features drifted.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from lepton_desktop.core.monitoring import drift_tests
from lepton_desktop.core.monitoring.drift_tests import Counts
from lepton_desktop.core.monitoring.traffic import HOURLY_AFTER_MINUTES
from lepton_desktop.core.monitoring.window import Window, minutes
from lepton_desktop.core.store import drift as store
from lepton_desktop.core.store import drift_sketch
from lepton_desktop.core.store import monitoring as monitoring_store

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext

#: Evidently's DataDriftPreset: the dataset drifted when this share of columns did.
DRIFT_SHARE = 0.5
#: Bars in a feature's histogram (numeric features; categories: the most frequent).
HISTOGRAM_BARS = 20


@dataclasses.dataclass(frozen=True)
class FeatureDrift:
    """One feature's (or the prediction's) drift over a window.

    Attributes:
        feature: the column (``prediction`` for the model's answers).
        role: ``feature`` or ``prediction``.
        test, statistic, p_value, drifted: Evidently's default test and its outcome
            (``p_value`` None for a distance; all None when nothing was served).
        psi: population stability index (10 training-quantile groups or categories).
        ks: the KS statistic (numeric features).
        reference_rows, current_rows: non-missing values compared.
        missing_share: served values missing (absent, empty, not a number).
        unseen_share: served categories the training data never had.
        unseen: the unseen values named (at most 32 a feature and minute).
        histogram: ``{"labels", "reference", "current"}`` shares per bar.
    """

    feature: str
    role: str
    dtype: str
    test: str | None
    statistic: float | None
    p_value: float | None
    drifted: bool
    psi: float | None
    ks: float | None
    reference_rows: int
    current_rows: int
    missing_share: float
    unseen_share: float
    unseen: dict[str, int]
    histogram: dict[str, list[Any]]

    def to_dict(self) -> dict[str, Any]:
        return {k: _finite(v) for k, v in dataclasses.asdict(self).items()}


@dataclasses.dataclass(frozen=True)
class Drift:
    """A model's drift over a window.

    Attributes:
        model: the model; ``versions``: the versions whose requests were compared.
        rows: served rows counted; ``reference``: what they were compared with.
        features: one entry per input feature, then the prediction's.
        drifted_features, share, dataset_drift: the dataset verdict.
        note: why there is no drift to show (no reference, nothing captured), or "".
    """

    model: str
    versions: list[int]
    rows: int
    reference: dict[str, Any]
    features: list[FeatureDrift]
    drifted_features: int
    share: float
    dataset_drift: bool
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["features"] = [f.to_dict() for f in self.features]
        return out

    def rows_for_json(self) -> list[dict[str, Any]]:
        """``monitor --json``'s ``drift`` entries: ``{feature, test, statistic, p_value,
        drifted}`` and the rest of each feature's numbers (histograms left out)."""
        return [{"model": self.model, **{k: v for k, v in f.to_dict().items()
                                          if k != "histogram"}}
                for f in self.features]  # fmt: skip


def evaluate(ctx: ProjectContext, window: Window, model: str, version: int | None) -> Drift:
    """The drift of ``model`` (one ``version``, or the newest versions sharing its bins)."""
    served = [v for name, v, *_ in monitoring_store.served_models(ctx.conn) if name == model]
    chosen = [version] if version else served
    stored = store.reference_keys(ctx.conn, model)
    notes = _ensure_references(ctx, model, [v for v in chosen if v not in stored])
    # A version found unavailable before keeps its reason in the file: read it, rather
    # than load the reference builder (torch, pandas) on every poll.
    notes += [_unavailable(ctx, model, v) for v in chosen if stored.get(v) == ""]
    keys = store.reference_keys(ctx.conn, model)
    usable = sorted((v for v in chosen if keys.get(v)), reverse=True)
    if not usable:
        return _empty(model, chosen, "; ".join(notes) or "no model version to compare")
    versions = [v for v in usable if keys[v] == keys[usable[0]]]
    profile = store.reference(ctx.conn, model, versions[0])
    assert profile is not None
    return _drift(ctx, window, model, versions, profile)


def _ensure_references(ctx: ProjectContext, model: str, versions: list[int]) -> list[str]:
    """Profile the versions that have no reference yet; why any could not be."""
    if not versions:
        return []
    # Imported here: building a reference reads datasets (pandas); reading drift does not.
    from lepton_desktop.core.monitoring import reference

    notes = []
    for number in versions:
        try:
            reference.ensure(ctx, model, number)
        except reference.ReferenceUnavailable as exc:
            notes.append(str(exc))
    return notes


def _unavailable(ctx: ProjectContext, model: str, version: int) -> str:
    profile = store.reference(ctx.conn, model, version) or {}
    return str(profile.get("unavailable", f"{model}:{version} has no drift reference"))


def _drift(ctx: ProjectContext, window: Window, model: str, versions: list[int],
           profile: dict[str, Any]) -> Drift:  # fmt: skip
    layout = drift_sketch.Layout.of(profile)
    first, last, grain = _minutes(ctx, window, model, versions)
    rows, counts, sums, unseen = store.sketch(ctx.conn, model, versions, first, last, grain,
                                              layout.size)  # fmt: skip
    features = []
    for index, spec in enumerate(layout.specs):
        part = layout.slice(index)
        role = "prediction" if index == len(profile["features"]) else "feature"
        features.append(feature_drift(spec, counts[part], unseen.get(spec["name"], {}), role,
                                      sums[part]))  # fmt: skip
    tested = [f for f in features if f.role == "feature" and f.test is not None]
    drifted = sum(f.drifted for f in tested)
    share = drifted / len(tested) if tested else 0.0
    note = "" if rows else "no inputs logged in this window (or the server ran with --no-capture)"
    described = {**profile.get("reference", {}), "rows": profile["rows"]}
    verdict = bool(tested) and share >= DRIFT_SHARE
    return Drift(model, versions, rows, described, features, drifted, share, verdict, note)


def feature_drift(
    spec: dict[str, Any],
    counts: np.ndarray,
    unseen: dict[str, int],
    role: str = "feature",
    sums: np.ndarray | None = None,
) -> FeatureDrift:
    """One feature's drift from its served counts (its missing count last) and sums."""
    reference_counts = np.asarray(spec["ref_counts"], dtype=np.int64)
    sample = Counts(spec, reference_counts, counts[:-1], spec["ref_missing"], int(counts[-1]),
                    unseen, None if sums is None else sums[:-1])  # fmt: skip
    result = drift_tests.run(sample)
    served = int(sample.current.sum())
    total = served + sample.current_missing
    unseen_count = int(sample.current[len(spec["categories"])]) if spec["dtype"] == \
        "categorical" else 0  # fmt: skip
    numeric = spec["dtype"] == "numeric"
    return FeatureDrift(
        feature=spec["name"], role=role, dtype=spec["dtype"],
        test=result.test if result else None,
        statistic=result.statistic if result else None,
        p_value=result.p_value if result else None,
        drifted=bool(result and result.drifted),
        psi=drift_tests.psi(sample) if served else None,
        ks=drift_tests.ks(sample)[0] if numeric and served else None,
        reference_rows=int(reference_counts.sum()), current_rows=served,
        missing_share=sample.current_missing / total if total else 0.0,
        unseen_share=unseen_count / served if served else 0.0,
        unseen=dict(sorted(unseen.items(), key=lambda kv: -kv[1])),
        histogram=histogram(sample),
    )  # fmt: skip


def histogram(counts: Counts) -> dict[str, list[Any]]:
    """Bars of training and served shares (numeric: ~20 training-quantile ranges)."""
    spec = counts.spec
    served = max(int(counts.current.sum()), 1)
    trained = max(int(counts.reference.sum()), 1)
    if spec["dtype"] == "categorical":
        order = np.argsort(-counts.reference[:-1], kind="stable")[: HISTOGRAM_BARS - 1]
        labels = [spec["categories"][i] for i in order] + ["(unseen)"]
        picked = np.concatenate([order, [len(spec["categories"])]])
        return {"labels": labels, "reference": (counts.reference[picked] / trained).tolist(),
                "current": (counts.current[picked] / served).tolist()}  # fmt: skip
    bounds = drift_tests.group_bounds(counts.reference, HISTOGRAM_BARS)
    centers = np.asarray(spec["centers"], dtype=np.float64)
    ends = np.append(bounds[1:], len(centers)) - 1
    labels = [_range_label(centers[a], centers[b]) for a, b in zip(bounds, ends, strict=True)]
    return {
        "labels": labels,
        "reference": (np.add.reduceat(counts.reference, bounds) / trained).tolist(),
        "current": (np.add.reduceat(counts.current, bounds) / served).tolist(),
    }


def _range_label(low: float, high: float) -> str:
    """A bar's name: where its training values start (a single value: that value)."""
    return f"{low:.4g}" if low == high else f"≥{low:.3g}"


def _minutes(ctx: ProjectContext, window: Window, model: str,
             versions: list[int]) -> tuple[int, int, str]:  # fmt: skip
    """The window's minutes, and the grain to read them in (hours from two days on)."""
    firsts = [monitoring_store.minute_range(ctx.conn, model, v)[0] for v in versions]
    known = [f for f in firsts if f is not None]
    first_logged = min(known) if known else int(window.until // 60)
    first, last, _ = minutes(window, first_logged)
    if last - first >= HOURLY_AFTER_MINUTES:
        return first - first % 60, last, "hours"
    return first, last, "minutes"


def _empty(model: str, versions: list[int], note: str) -> Drift:
    return Drift(model, versions, 0, {}, [], 0, 0.0, False, note)


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such numbers become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
