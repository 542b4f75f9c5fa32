"""Assigning rows to train/val/test: stratified, in time order, or at random.

Rows are split with a seeded generator, so the same seed gives the same split. A
stratified split divides each class on its own, so every split keeps the class
proportions; classes too small for that are pooled and divided at random.
"""

from __future__ import annotations

import numpy as np

#: A numeric target with at most this many distinct integer values is a class label.
MAX_CLASSES = 20


def is_classification(target: np.ndarray) -> bool:
    """True for a text/categorical target, or a numeric one with few integer values.

    The integer values must also repeat (on average at least twice each): twenty
    whole-number weights over twenty rows are measurements, not twenty classes.
    """
    if target.dtype.kind != "f":
        return True
    values = target[~np.isnan(target)]
    present = np.unique(values)
    few = len(present) <= min(MAX_CLASSES, max(2, len(values) // 2))
    return few and bool(np.all(present == np.round(present)))


def assign_split(
    n: int,
    fractions: tuple[float, float, float],
    seed: int,
    *,
    groups: np.ndarray | None = None,
    ordered: bool = False,
) -> np.ndarray:
    """Split codes (0 train, 1 val, 2 test) for ``n`` rows.

    Args:
        n: number of rows.
        fractions: train, val and test fractions (summing to 1).
        seed: seed of the shuffle (unused when ``ordered``).
        groups: per-row group codes; each group is split on its own (stratified).
        ordered: keep row order (time series): the first rows are train, the last test.

    Returns:
        An ``int8`` array of split codes.
    """
    split = np.empty(n, dtype=np.int8)
    if ordered:
        _assign(np.arange(n), fractions, split)
        return split
    rng = np.random.default_rng(seed)
    buckets = [np.arange(n)] if groups is None else _strata(groups, fractions)
    for bucket in buckets:
        _assign(rng.permutation(bucket), fractions, split)
    return split


def _strata(groups: np.ndarray, fractions: tuple[float, float, float]) -> list[np.ndarray]:
    # Each group is divided on its own, but a group too small to give every asked
    # part a row (a class of one or two rows, or labels that never repeat) would go
    # to train alone: such groups are pooled and divided at random instead, so an
    # all-unique target still splits 70/15/15, not 100/0/0.
    buckets = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    small = [b for b in buckets if not _fills_every_part(len(b), fractions)]
    if not small:
        return buckets
    pooled = np.sort(np.concatenate(small))
    return [b for b in buckets if _fills_every_part(len(b), fractions)] + [pooled]


def _fills_every_part(n: int, fractions: tuple[float, float, float]) -> bool:
    split = np.empty(n, dtype=np.int8)
    _assign(np.arange(n), fractions, split)
    return all((split == i).any() for i, f in enumerate(fractions) if f > 0)


def small_groups(groups: np.ndarray, fractions: tuple[float, float, float]) -> int:
    """How many groups are too small to be divided in ``fractions`` on their own."""
    sizes = np.unique(groups, return_counts=True)[1]
    return sum(1 for n in sizes if not _fills_every_part(int(n), fractions))


def _assign(order: np.ndarray, fractions: tuple[float, float, float], split: np.ndarray) -> None:
    n = len(order)
    # Round half up (not to even), so 0.5 row boundaries always favour train, then val.
    train = int(np.floor(n * fractions[0] + 0.5))
    val_end = max(train, int(np.floor(n * (fractions[0] + fractions[1]) + 0.5)))
    split[order[:train]] = 0
    split[order[train:val_end]] = 1
    split[order[val_end:]] = 2
