"""Served inputs -> counts on a drift reference's bins, and per-request anomaly flags.

The log's writers call this (through :mod:`.drift`) on each batch of logged requests,
so the drift of any window is later a sum of counts, never a parse of the log. A
*profile* (JSON, built from the training split by
:mod:`lepton_desktop.core.monitoring.reference`) lists the features and, for each, its
bins: a numeric feature with at most :data:`MAX_POINTS` distinct reference values
gets a slot for each value and one for each gap between two values (so the
Kolmogorov–Smirnov statistic read from the counts is the exact one); a numeric feature
with more gets the reference's quantile edges plus edges beyond its range; a
categorical feature gets a slot per training category and one for unseen values.
Every feature also has a slot for missing values. Each slot keeps the count of its
values and, for numbers, their sum (so a bin's served values sit at their own mean
when distances are measured). Unseen values are named, up to :data:`MAX_UNSEEN` per
feature and bucket (their count is exact either way).

Pure numpy; the SQL around it is in :mod:`.drift`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

#: Numeric references with at most this many distinct values are binned on each value.
MAX_POINTS = 1000
#: Unseen values named per feature and bucket (the unseen slot counts them all).
MAX_UNSEEN = 32
#: An unseen value is named by at most this many characters.
MAX_VALUE_CHARS = 80
#: Anomaly kinds, as bits of ``request_anomalies.kinds``.
OUT_OF_RANGE, UNSEEN, MISSING, OUTLIER = 1, 2, 4, 8
KINDS = {"out_of_range": OUT_OF_RANGE, "unseen_category": UNSEEN,
         "missing_feature": MISSING, "outlier": OUTLIER}  # fmt: skip
#: Images larger than this many pixels are measured on a reduced copy.
_IMAGE_PIXELS = 1 << 22


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where each feature's slots start in a bucket's count vector.

    Attributes:
        specs: the profile's features, then its prediction (when it has one).
        offsets: first slot of each spec.
        size: total slots.
    """

    specs: tuple[dict[str, Any], ...]
    offsets: tuple[int, ...]
    size: int

    @classmethod
    def of(cls, profile: dict[str, Any]) -> Layout:
        specs = [*profile["features"]]
        if profile.get("prediction"):
            specs.append(profile["prediction"])
        offsets, at = [], 0
        for spec in specs:
            offsets.append(at)
            at += slot_count(spec)
        return cls(tuple(specs), tuple(offsets), at)

    def slice(self, index: int) -> slice:
        """The slots of spec ``index``."""
        return slice(self.offsets[index], self.offsets[index] + slot_count(self.specs[index]))


def slot_count(spec: dict[str, Any]) -> int:
    """Bins of one feature, its missing slot included (the last one)."""
    if spec["dtype"] == "categorical":
        return len(spec["categories"]) + 2  # categories, unseen, missing
    if spec["mode"] == "points":
        return 2 * len(spec["edges"]) + 2  # below, (value, gap above) each, missing
    return len(spec["edges"]) + 2  # below the first edge, between edges, missing


@dataclasses.dataclass(frozen=True)
class Slots:
    """Sparse counts: the slots used (ascending), their counts and their values' sums."""

    index: np.ndarray
    counts: np.ndarray
    sums: np.ndarray

    @classmethod
    def gather(cls, index: np.ndarray, counts: np.ndarray, sums: np.ndarray) -> Slots:
        """Add up entries that share a slot."""
        used, where = np.unique(index, return_inverse=True)
        return cls(used.astype(np.int64), np.bincount(where, weights=counts,
                                                      minlength=len(used)).astype(np.int64),
                   np.bincount(where, weights=sums, minlength=len(used)))  # fmt: skip

    def __add__(self, other: Slots) -> Slots:
        return Slots.gather(np.concatenate([self.index, other.index]),
                            np.concatenate([self.counts, other.counts]),
                            np.concatenate([self.sums, other.sums]))  # fmt: skip


@dataclasses.dataclass
class Batch:
    """What one batch of requests adds.

    Attributes:
        buckets: grain (seconds) -> bucket (its first minute) -> (rows, its
            :class:`Slots`).
        unseen: grain -> bucket -> {feature: {value: count}}.
        flagged: ``(log_id, minute, kinds, rows_flagged, score)`` per flagged request.
    """

    buckets: dict[int, dict[int, tuple[int, Slots]]]
    unseen: dict[int, dict[int, dict[str, dict[str, int]]]]
    flagged: list[tuple[int, int, int, int, float | None]]


def sketch(profile: dict[str, Any], rows: Sequence[tuple[int, float, str | None, str | None]],
           grains: Sequence[int] = (60, 3600)) -> Batch:  # fmt: skip
    """Counts and flags of ``(log_id, ts, inputs, outputs)`` rows, per bucket of each grain.

    Rows whose inputs are not raw records (tensors sent to V2 or MLflow, or nothing
    captured) add only their predictions.
    """
    layout = Layout.of(profile)
    records, owner, answers, answer_owner = _decode(rows, profile["kind"])
    slots: list[np.ndarray] = []
    row_of_slot: list[np.ndarray] = []
    numbers: list[np.ndarray] = []
    unseen: list[tuple[int, str, str]] = []
    flags = np.zeros(len(records), dtype=np.int64)
    measured: dict[str, Any] = {}
    for index, spec in enumerate(layout.specs):
        is_prediction = index == len(profile["features"])
        values = (_answer_values(spec, answers) if is_prediction
                  else _values(records, spec, profile, measured))  # fmt: skip
        owners = answer_owner if is_prediction else owner
        slots.append(bin_values(spec, values) + layout.offsets[index])
        row_of_slot.append(owners)
        numbers.append(_summable(spec, values))
        unseen += [(int(owners[i]), spec["name"], v) for i, v in _unseen(spec, values)]
        if not is_prediction:
            flags |= _flags(spec, values)
    score = _outlier_scores(profile.get("outlier"), records, profile, measured)
    if score is not None:
        flags |= np.where(score > profile["outlier"]["threshold"], OUTLIER, 0)
    ts = np.array([r[1] for r in rows], dtype=np.float64)
    out = Batch({}, {}, [])
    all_slots = np.concatenate(slots) if slots else np.zeros(0, dtype=np.int64)
    owners_all = np.concatenate(row_of_slot) if row_of_slot else np.zeros(0, dtype=np.int64)
    all_numbers = np.concatenate(numbers) if numbers else np.zeros(0)
    for grain in grains:
        bucket_of_row = (ts // grain).astype(np.int64) * (grain // 60)
        out.buckets[grain] = _count(layout.size, all_slots, all_numbers,
                                    bucket_of_row[owners_all], bucket_of_row)  # fmt: skip
        out.unseen[grain] = _named(unseen, bucket_of_row)
    minute = (ts // 60).astype(np.int64)
    out.flagged = _flagged(rows, owner, flags, score, minute)
    return out


def bin_values(spec: dict[str, Any], values: Any) -> np.ndarray:
    """Each value's slot within its feature (the last slot: missing)."""
    missing = slot_count(spec) - 1
    if spec["dtype"] == "categorical":
        index = {c: i for i, c in enumerate(spec["categories"])}
        unseen = len(spec["categories"])
        return np.fromiter(
            (missing if v is None else index.get(v, unseen) for v in values), np.int64, len(values)
        )
    x = np.asarray(values, dtype=np.float64)
    edges = np.asarray(spec["edges"], dtype=np.float64)
    if spec["mode"] == "points":
        i = np.searchsorted(edges, x, side="left")
        hit = (i < len(edges)) & (edges[np.minimum(i, len(edges) - 1)] == x)
        binned = np.where(hit, 2 * i + 1, 2 * i)
    else:
        binned = np.searchsorted(edges, x, side="right")
    return np.where(np.isfinite(x), binned, missing).astype(np.int64)


def numeric(value: Any) -> float:
    """A client's value as a number (NaN when missing or unreadable; inf counts as missing)."""
    if value is None or isinstance(value, bool):
        return math.nan if value is None else float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def category(value: Any) -> str | None:
    """A client's value as a category (``None`` when missing)."""
    if value is None or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def image_stats(data: Any) -> tuple[float, float, float, float]:
    """``(brightness, contrast, width, height)`` of a base64 (or bytes) image; NaNs if unreadable.

    Brightness and contrast are the mean and standard deviation of the grey levels
    (0-255).
    """
    from PIL import Image, ImageStat

    nothing = (math.nan,) * 4
    if isinstance(data, dict):
        data = data.get("image")
    try:
        raw = base64.b64decode(data, validate=True) if isinstance(data, str) else data
        if not isinstance(raw, bytes | bytearray):
            return nothing
        with Image.open(io.BytesIO(raw)) as picture:
            width, height = picture.size
            if width * height > _IMAGE_PIXELS:
                picture.draft("L", (2048, 2048))
            stat = ImageStat.Stat(picture.convert("L"))
    except (binascii.Error, ValueError, OSError, Image.DecompressionBombError):
        return nothing
    return float(stat.mean[0]), float(stat.stddev[0]), float(width), float(height)


def series_stats(record: Any, column: str, window: int) -> tuple[float, float]:
    """``(last value, mean of the last window)`` of a time-series request's window."""
    values = record
    if isinstance(record, dict):
        values = record.get(column, record.get("values"))
    if not isinstance(values, list) or not values:
        return math.nan, math.nan
    recent = np.array([numeric(v) for v in values[-window:]], dtype=np.float64)
    if not np.isfinite(recent).all():
        return math.nan, math.nan
    return float(recent[-1]), float(recent.mean())


# -- one batch -------------------------------------------------------------------------


def _decode(rows: Sequence[tuple[int, float, str | None, str | None]], kind: str
            ) -> tuple[list[Any], np.ndarray, list[Any], np.ndarray]:  # fmt: skip
    """Records and answers of the rows, each with the row it came from."""
    records: list[Any] = []
    owner: list[int] = []
    answers: list[Any] = []
    answer_owner: list[int] = []
    for i, (_, _, inputs, outputs) in enumerate(rows):
        for record in _records(inputs, kind):
            records.append(record)
            owner.append(i)
        for answer in _parsed(outputs):
            if isinstance(answer, dict):
                answers.append(answer.get("label", answer.get("value")))
                answer_owner.append(i)
    positions = np.array(owner, dtype=np.int64)
    return records, positions, answers, np.array(answer_owner, dtype=np.int64)


def _parsed(text: str | None) -> list[Any]:
    if not text:
        return []
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return []
    return value if isinstance(value, list) else []


def _records(inputs: str | None, kind: str) -> list[Any]:
    """Raw records only: tabular rows are objects; a series' window may be a bare list."""
    parsed = _parsed(inputs)
    if kind == "timeseries":
        return [r for r in parsed if isinstance(r, dict | list)]
    return [r for r in parsed if isinstance(r, dict)]


#: Derived features: source -> (what measures the record, the measure's position).
_DERIVED = {"last": ("series", 0), "mean": ("series", 1), "brightness": ("image", 0),
            "contrast": ("image", 1), "width": ("image", 2), "height": ("image", 3)}


def _values(records: list[Any], spec: dict[str, Any], profile: dict[str, Any],
            measured: dict[str, Any]) -> Any:  # fmt: skip
    """One feature's values over the records (``measured``: values already read, kept)."""
    source = spec.get("source", "field")
    if source == "field":
        name = spec["name"]
        if name not in measured:
            raw = [r.get(name) for r in records]
            measured[name] = ([category(v) for v in raw] if spec["dtype"] == "categorical"
                              else numbers(raw))  # fmt: skip
        return measured[name]
    group, position = _DERIVED[source]
    if group not in measured:
        if group == "series":
            column, window = profile["series_column"], profile["window"]
            rows: list[tuple[float, ...]] = [series_stats(r, column, window) for r in records]
        else:
            rows = [image_stats(r) for r in records]
        measured[group] = np.array(rows, dtype=np.float64).reshape(len(records), -1)
    return measured[group][:, position]


def numbers(values: list[Any]) -> np.ndarray:
    """Clients' values as float64, NaN where missing, unreadable or infinite.

    One numpy conversion when every value reads as a number (the usual case), value by
    value otherwise.
    """
    try:  # None, text that is no number, or a list make numpy raise
        x = np.array(values, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError
    except (TypeError, ValueError):
        x = np.fromiter((numeric(v) for v in values), np.float64, len(values))
    return np.where(np.isfinite(x), x, np.nan)


def _summable(spec: dict[str, Any], values: Any) -> np.ndarray:
    """What a slot's sum adds: numbers (0 where missing); nothing for categories."""
    if spec["dtype"] == "categorical":
        return np.zeros(len(values))
    x = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(x), x, 0.0)


def _answer_values(spec: dict[str, Any], answers: list[Any]) -> Any:
    if spec["dtype"] == "categorical":
        return [category(a) for a in answers]
    return np.fromiter((numeric(a) for a in answers), np.float64, len(answers))


def _unseen(spec: dict[str, Any], values: Any) -> list[tuple[int, str]]:
    """``(position, value)`` of unseen categories (and of new values of a numeric feature
    with at most 5 reference values, whose test depends on how many values there are)."""
    if spec["dtype"] == "categorical":
        known = set(spec["categories"])
        return [(i, v[:MAX_VALUE_CHARS]) for i, v in enumerate(values)
                if v is not None and v not in known]  # fmt: skip
    if spec["mode"] == "points" and len(spec["edges"]) <= 5:
        x = np.asarray(values, dtype=np.float64)
        new = np.isfinite(x) & ~np.isin(x, np.asarray(spec["edges"], dtype=np.float64))
        return [(int(i), repr(float(x[i]))) for i in np.flatnonzero(new)]
    return []


def _named(unseen: list[tuple[int, str, str]], bucket_of_row: np.ndarray
           ) -> dict[int, dict[str, dict[str, int]]]:  # fmt: skip
    out: dict[int, dict[str, dict[str, int]]] = {}
    for row, feature, value in unseen:
        named = out.setdefault(int(bucket_of_row[row]), {}).setdefault(feature, {})
        if value in named or len(named) < MAX_UNSEEN:
            named[value] = named.get(value, 0) + 1
    return out


def _flags(spec: dict[str, Any], values: Any) -> np.ndarray:
    if spec["dtype"] == "categorical":
        known = set(spec["categories"])
        return np.fromiter(
            (MISSING if v is None else (0 if v in known else UNSEEN) for v in values),
            np.int64, len(values),
        )  # fmt: skip
    x = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        outside = (x < spec["min"]) | (x > spec["max"])
    return np.where(np.isnan(x), MISSING, np.where(outside, OUT_OF_RANGE, 0))


def _outlier_scores(model: dict[str, Any] | None, records: list[Any], profile: dict[str, Any],
                    measured: dict[str, Any]) -> np.ndarray | None:  # fmt: skip
    """Mahalanobis distance of each record from the training split (missing -> the mean)."""
    if not model or not records:
        return None
    specs = {s["name"]: s for s in profile["features"]}
    mean = np.asarray(model["mean"], dtype=np.float64)
    columns = [np.asarray(_values(records, specs[name], profile, measured), dtype=np.float64)
               for name in model["features"]]  # fmt: skip
    x = np.column_stack(columns)
    x = np.where(np.isnan(x), mean, x) - mean
    inverse = np.asarray(model["inv_cov"], dtype=np.float64)
    squared = np.einsum("ij,jk,ik->i", x, inverse, x)
    return np.sqrt(np.clip(squared, 0.0, None))


def _count(size: int, slots: np.ndarray, numbers: np.ndarray, slot_bucket: np.ndarray,
           bucket_of_row: np.ndarray) -> dict[int, tuple[int, Slots]]:  # fmt: skip
    """Per bucket: the rows in it and its slots (one pass: keys of bucket and slot)."""
    buckets, rows = np.unique(bucket_of_row, return_counts=True)
    position = np.searchsorted(buckets, slot_bucket)
    keys, where = np.unique(position * size + slots, return_inverse=True)
    counts = np.bincount(where, minlength=len(keys)).astype(np.int64)
    sums = np.bincount(where, weights=numbers, minlength=len(keys))
    owner = keys // size
    out = {}
    for i, (bucket, count) in enumerate(zip(buckets, rows, strict=True)):
        mine = slice(np.searchsorted(owner, i, "left"), np.searchsorted(owner, i, "right"))
        out[int(bucket)] = (int(count), Slots(keys[mine] % size, counts[mine], sums[mine]))
    return out


def _flagged(rows: Sequence[tuple[int, float, str | None, str | None]], owner: np.ndarray,
             flags: np.ndarray, score: np.ndarray | None, bucket_of_row: np.ndarray
             ) -> list[tuple[int, int, int, int, float | None]]:  # fmt: skip
    """Per request: the kinds of its flagged rows, how many, its worst outlier score."""
    kinds = np.zeros(len(rows), dtype=np.int64)
    np.bitwise_or.at(kinds, owner, flags)
    flagged_rows = np.bincount(owner[flags != 0], minlength=len(rows))
    worst = np.full(len(rows), -np.inf)
    if score is not None:
        np.maximum.at(worst, owner, score)
    return [
        (int(rows[i][0]), int(bucket_of_row[i]), int(kinds[i]), int(flagged_rows[i]),
         float(worst[i]) if np.isfinite(worst[i]) else None)
        for i in np.flatnonzero(kinds).tolist()
    ]  # fmt: skip


# -- merging buckets ---------------------------------------------------------------------


def encode(slots: Slots) -> tuple[bytes, bytes, bytes]:
    """Sparse slots as blobs: slot numbers and counts (uint32), sums (float64)."""
    return (slots.index.astype("<u4").tobytes(), slots.counts.astype("<u4").tobytes(),
            slots.sums.astype("<f8").tobytes())  # fmt: skip


def decode(index: bytes, counts: bytes, sums: bytes) -> Slots:
    """Inverse of :func:`encode`."""
    return Slots(np.frombuffer(index, dtype="<u4").astype(np.int64),
                 np.frombuffer(counts, dtype="<u4").astype(np.int64),
                 np.frombuffer(sums, dtype="<f8").astype(np.float64))  # fmt: skip


def merge_unseen(into: dict[str, dict[str, int]], more: dict[str, dict[str, int]]) -> None:
    """Add named unseen values, keeping at most :data:`MAX_UNSEEN` names per feature."""
    for feature, values in more.items():
        named = into.setdefault(feature, {})
        for value, count in values.items():
            if value in named or len(named) < MAX_UNSEEN:
                named[value] = named.get(value, 0) + int(count)


def add_dense(counts: np.ndarray, sums: np.ndarray, slots: Slots) -> None:
    """Add sparse slots into dense count and sum vectors (in place; stray slots skipped)."""
    keep = slots.index < len(counts)
    np.add.at(counts, slots.index[keep], slots.counts[keep])
    np.add.at(sums, slots.index[keep], slots.sums[keep])
