"""Drift tests on counts: a feature's training counts against its served counts.

The test is the one Evidently picks by default (``_get_default_stattest`` in its
``stattests/registry.py``), computed the way Evidently computes it, with scipy:

============================  ==========================  ===========================
reference rows (non-missing)  numeric                     categorical
============================  ==========================  ===========================
at most 1,000                 KS p-value (<= 0.05); with  chi-square p-value (< 0.05);
                              at most 5 values: as        with at most 2 values:
                              categorical                 Z-test p-value (< 0.05)
more than 1,000               Wasserstein distance /      Jensen–Shannon distance
                              reference std (>= 0.1);     (>= 0.1)
                              at most 5 values: J–S
============================  ==========================  ===========================

"Values" are the distinct values of training and served data together. Missing and
infinite values are left out, as Evidently drops them. From counts on the bins of
:mod:`lepton_desktop.core.store.drift_sketch` the KS statistic is exact on a
reference binned on every value (its p-value too), chi-square, Z and Jensen–Shannon
are exact, and the Wasserstein distance of a reference binned on quantiles places each
bin's training values at their mean and its served values at theirs (exact up to
how values spread inside a bin).
PSI is reported beside the test, on ten training-quantile groups of bins.

scipy is imported inside the tests: it takes a second to import, which a monitoring
read that computes no drift (traffic, quality) must not pay.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

#: Evidently's default thresholds.
P_THRESHOLD = 0.05
DISTANCE_THRESHOLD = 0.1
#: Evidently's reference size where the tests switch from p-values to distances.
SMALL_REFERENCE = 1000
#: scipy's ks_2samp computes exact p-values up to this sample size (its MAX_AUTO_N).
KS_EXACT_N = 10_000
PSI_GROUPS = 10


@dataclasses.dataclass(frozen=True)
class Counts:
    """One feature's counts on its bins (missing counted apart).

    Attributes:
        spec: the feature's profile (bins, categories, training counts).
        reference: training counts per bin.
        current: served counts per bin.
        reference_missing, current_missing: missing values.
        unseen: named unseen values of the served data, with their counts.
        current_sums: served values' sum per bin (numbers), to place them at their mean.
    """

    spec: dict[str, Any]
    reference: np.ndarray
    current: np.ndarray
    reference_missing: int
    current_missing: int
    unseen: dict[str, int]
    current_sums: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class TestResult:
    """A drift test's outcome (``p_value`` None for a distance)."""

    test: str
    statistic: float | None
    p_value: float | None
    drifted: bool


def choose_test(counts: Counts) -> str:
    """Evidently's default test for the feature: ks, chisquare, z, wasserstein or jensenshannon."""
    n_reference = int(counts.reference.sum())
    values = distinct_values(counts)
    numeric = counts.spec["dtype"] == "numeric"
    if n_reference <= SMALL_REFERENCE:
        if numeric and values > 5:
            return "ks"
        return "chisquare" if values > 2 else "z"
    if numeric and values > 5:
        return "wasserstein"
    return "jensenshannon"


def distinct_values(counts: Counts) -> int:
    """Distinct values of training and served data together (named unseen values counted)."""
    spec = counts.spec
    if spec["dtype"] == "numeric" and spec["mode"] == "bins":
        return spec["n_unique"]  # more than 20 in the training data alone
    keys = value_counts(counts)
    return sum(1 for r, c in keys.values() if r or c)


def value_counts(counts: Counts) -> dict[Any, tuple[int, int]]:
    """``{value: (training count, served count)}`` of a categorical or few-valued feature."""
    spec = counts.spec
    out: dict[Any, tuple[int, int]] = {}
    if spec["dtype"] == "categorical":
        for i, name in enumerate(spec["categories"]):
            out[name] = (int(counts.reference[i]), int(counts.current[i]))
        for name, n in counts.unseen.items():
            out[name] = (0, int(n))
        return out
    for j, value in enumerate(spec["edges"]):
        out[float(value)] = (int(counts.reference[2 * j + 1]), int(counts.current[2 * j + 1]))
    for name, n in counts.unseen.items():
        out[float(name)] = (0, int(n))
    return out


def run(counts: Counts, test: str | None = None) -> TestResult | None:
    """Run ``test`` (default: :func:`choose_test`); None when nothing was served."""
    if counts.current.sum() == 0 or counts.reference.sum() == 0:
        return None
    test = test or choose_test(counts)
    if test == "ks":
        statistic, p = ks(counts)
        return TestResult("ks", statistic, p, p <= P_THRESHOLD)
    if test == "wasserstein":
        value = wasserstein_normed(counts)
        return TestResult("wasserstein", value, None, value >= DISTANCE_THRESHOLD)
    if test == "jensenshannon":
        value = jensen_shannon(counts)
        return TestResult("jensenshannon", value, None, value >= DISTANCE_THRESHOLD)
    if test == "chisquare":
        statistic, p = chi_square(counts)
        return TestResult("chisquare", statistic, p, p < P_THRESHOLD)
    z, p_z = z_test(counts)
    return TestResult("z", z, p_z, p_z is not None and p_z < P_THRESHOLD)


# -- the tests -----------------------------------------------------------------------------


def ks(counts: Counts) -> tuple[float, float]:
    """Two-sample KS: the largest gap between the two ECDFs at the bins' boundaries.

    Bins on every training value (and every gap) make this the exact statistic: between
    two training values the training ECDF is flat, so the largest gap lies at an end.
    The p-value is scipy's ``ks_2samp`` (method ``auto``) for those sample sizes.
    """
    from scipy import stats

    n, m = int(counts.reference.sum()), int(counts.current.sum())
    gaps = np.cumsum(counts.reference) / n - np.cumsum(counts.current) / m
    d = float(np.max(np.abs(gaps)))
    if max(n, m) <= KS_EXACT_N and counts.spec["mode"] == "points":
        # The exact p-value: scipy on samples with the same ECDFs at every boundary.
        centers = np.asarray(counts.spec["centers"], dtype=np.float64)
        result = stats.ks_2samp(np.repeat(centers, counts.reference),
                                np.repeat(centers, counts.current))  # fmt: skip
        return float(result.statistic), float(result.pvalue)
    big, small = sorted([float(n), float(m)], reverse=True)
    p = float(stats.kstwo.sf(d, np.round(big * small / (big + small))))
    return d, min(max(p, 0.0), 1.0)


def wasserstein_normed(counts: Counts) -> float:
    """Wasserstein distance over the training standard deviation (floored at 0.001).

    Each bin's training values sit at their mean, and so do its served values (from the
    bin's sum): the distance is exact up to how values spread inside one bin.
    """
    from scipy import stats

    centers = np.asarray(counts.spec["centers"], dtype=np.float64)
    served = centers
    if counts.current_sums is not None:
        served = np.divide(counts.current_sums, counts.current, out=centers.copy(),
                           where=counts.current > 0)  # fmt: skip
    value = stats.wasserstein_distance(centers, served, counts.reference, counts.current)
    return float(value / max(counts.spec["std"], 0.001))


def jensen_shannon(counts: Counts) -> float:
    """Jensen–Shannon distance (natural log) of the value shares."""
    from scipy.spatial import distance

    pairs = list(value_counts(counts).values())
    reference = np.array([r for r, _ in pairs], dtype=np.float64) / counts.reference.sum()
    current = np.array([c for _, c in pairs], dtype=np.float64) / counts.current.sum()
    return float(distance.jensenshannon(reference, current))


def chi_square(counts: Counts) -> tuple[float, float]:
    """Pearson's chi-square of served counts against training shares scaled to them."""
    from scipy import stats

    pairs = [p for p in value_counts(counts).values() if p[0] or p[1]]
    n, m = counts.reference.sum(), counts.current.sum()
    expected = np.array([r for r, _ in pairs], dtype=np.float64) * (m / n)
    observed = np.array([c for _, c in pairs], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        result = stats.chisquare(observed, expected)
    return float(result.statistic), float(result.pvalue)


def z_test(counts: Counts) -> tuple[float | None, float | None]:
    """Two-proportion Z-test on the share of values other than the smallest one."""
    from scipy import stats

    keys = {k: v for k, v in value_counts(counts).items() if v[0] or v[1]}
    n, m = int(counts.reference.sum()), int(counts.current.sum())
    reference_keys = [k for k, v in keys.items() if v[0]]
    current_keys = [k for k, v in keys.items() if v[1]]
    if len(reference_keys) == 1 and current_keys == reference_keys:
        return 0.0, 1.0
    first = sorted(keys)[0]
    p1, p2 = 1 - keys[first][0] / n, 1 - keys[first][1] / m
    pooled = (p1 * n + p2 * m) / (n + m)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / m))
    if spread == 0:
        return None, None
    z = (p1 - p2) / spread
    return z, float(2 * (1 - stats.norm.cdf(abs(z))))


def psi(counts: Counts) -> float:
    """Population stability index on ~10 training-quantile groups of bins (categories).

    Empty groups get Evidently's floor (a share of 0.0001, or a millionth of the least
    non-empty share when that is smaller).
    """
    reference, current = grouped(counts, PSI_GROUPS)
    reference, current = _floored(reference), _floored(current)
    return float(np.sum((reference - current) * np.log(reference / current)))


def grouped(counts: Counts, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and served shares over about ``groups`` groups of neighbouring bins."""
    if counts.spec["dtype"] == "categorical":
        return (counts.reference / counts.reference.sum(),
                counts.current / max(counts.current.sum(), 1))  # fmt: skip
    bounds = group_bounds(counts.reference, groups)
    reference = np.add.reduceat(counts.reference, bounds) / counts.reference.sum()
    current = np.add.reduceat(counts.current, bounds) / max(counts.current.sum(), 1)
    return reference, current


def group_bounds(reference: np.ndarray, groups: int) -> np.ndarray:
    """First bin of each group: cuts where the training mass crosses each 1/groups."""
    cumulative = np.cumsum(reference) / max(reference.sum(), 1)
    cuts = np.searchsorted(cumulative, np.arange(1, groups) / groups, side="left") + 1
    return np.unique(np.concatenate([[0], cuts[cuts < len(reference)]]))


def _floored(shares: np.ndarray) -> np.ndarray:
    present = shares[shares > 0]
    if not len(present):
        return np.full_like(shares, 1e-4)
    least = present.min()
    floor = least / 1e6 if least <= 1e-4 else 1e-4
    return np.where(shares == 0, floor, shares)
