"""A study's trials as numpy columns, merged from :class:`StudyDelta` s (Qt-free).

:class:`StudyView` belongs to one thread (the GUI's): it merges the deltas that
:func:`~lepton_desktop.core.tuning.reading.read_delta` reads on the DB thread, and the
plots hand its arrays to pyqtgraph as they are. One row per trial, in trial id order;
NaN where a trial has no value or did not draw a parameter.

Intermediate values of finished trials never change, so they are only ever appended
(each trial's points stay contiguous and ordered by step): a chart can remember how
many it has drawn and append the rest. Those of unfinished trials are replaced on each
delta, since every delta reads unfinished trials again in full.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lepton_desktop.core.store.optuna_trials import OptunaStudy
from lepton_desktop.core.tuning.reading import (
    COMPLETE,
    UNFINISHED,
    ParamInfo,
    StudyCursor,
    StudyDelta,
)


@dataclasses.dataclass
class ParamColumn:
    """One hyperparameter over all trials.

    Attributes:
        info: its distribution (choices merged over every trial read).
        values: per trial; a categorical parameter's choice index; NaN when the
            trial did not draw it (conditional parameters, failed trials).
    """

    info: ParamInfo
    values: np.ndarray

    def text(self, row: int) -> str:
        """The value of one trial as the user reads it ("" when absent)."""
        value = self.values[row]
        if np.isnan(value):
            return ""
        if self.info.kind == "categorical":
            return self.info.choices[int(value)]
        if self.info.kind == "int":
            return str(int(value))
        return f"{value:.4g}"


@dataclasses.dataclass(frozen=True)
class StudyChange:
    """What one :meth:`StudyView.apply` changed.

    Attributes:
        new: trials appended (their rows are the last ``new`` ones).
        changed: rows of trials read before that were read again (unfinished ones).
        finished: trials that are finished now and were not before (new ones included).
    """

    new: int
    changed: np.ndarray
    finished: int

    @property
    def any(self) -> bool:
        """True when something is to be redrawn."""
        return bool(self.new or len(self.changed))


class StudyView:
    """The trials of one study as columns (one row per trial, by trial id).

    Args:
        study: the study's row (directions and metric names).
    """

    def __init__(self, study: OptunaStudy) -> None:
        self.study = study
        self.revision = 0
        self.trial_ids = np.zeros(0, dtype=np.int64)
        self.numbers = np.zeros(0, dtype=np.int64)
        self.states = np.zeros(0, dtype=np.int8)
        self.starts = np.zeros(0)
        self.completes = np.zeros(0)
        self.values = np.zeros((0, self.n_objectives))
        self.run_ids = np.zeros(0, dtype=np.int64)
        self.params: dict[str, ParamColumn] = {}
        # Intermediate values of finished trials (append-only) and of unfinished ones.
        self.iv_rows = np.zeros(0, dtype=np.int64)
        self.iv_steps = np.zeros(0)
        self.iv_values = np.zeros(0)
        self.live_rows = np.zeros(0, dtype=np.int64)
        self.live_steps = np.zeros(0)
        self.live_values = np.zeros(0)

    # -- shape -----------------------------------------------------------------------

    @property
    def n(self) -> int:
        """Trials read."""
        return len(self.trial_ids)

    @property
    def n_objectives(self) -> int:
        """Objectives of the study (2 or more: multi-objective)."""
        return max(1, len(self.study.directions))

    @property
    def directions(self) -> tuple[str, ...]:
        """``minimize`` or ``maximize`` per objective."""
        return tuple(d.lower() for d in self.study.directions) or ("minimize",)

    def objective_name(self, objective: int = 0) -> str:
        """The objective's metric name, or ``value`` (``value 1``, ... when several)."""
        names = self.study.metric_names
        if objective < len(names):
            return names[objective]
        return "value" if self.n_objectives == 1 else f"value {objective}"

    def cursor(self) -> StudyCursor:
        """Where the next :func:`read_delta` starts."""
        pending = self.trial_ids[np.isin(self.states, UNFINISHED)]
        after = int(self.trial_ids[-1]) if self.n else 0
        return StudyCursor(self.study.study_id, after, tuple(int(i) for i in pending))

    # -- merging -----------------------------------------------------------------------

    def apply(self, delta: StudyDelta) -> StudyChange:
        """Merge a delta: update trials read before, append new ones."""
        self.study = delta.study
        rows, known = self._locate(delta.trial_ids)
        was_unfinished = np.isin(self.states[rows[known]], UNFINISHED)
        new_at = np.flatnonzero(~known)
        rows[new_at] = self.n + np.arange(len(new_at))
        self._grow(delta, new_at)
        self._assign(delta, rows)
        finished_now = ~np.isin(delta.states, UNFINISHED)
        self._merge_params(delta, rows)
        self._merge_intermediate(delta, rows, finished_now)
        changed = rows[known]
        finished = int(
            np.count_nonzero(finished_now[new_at])
            + np.count_nonzero(finished_now[known] & was_unfinished)
        )
        if len(new_at) or len(changed):
            self.revision += 1
        return StudyChange(len(new_at), changed, finished)

    def _locate(self, trial_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = np.searchsorted(self.trial_ids, trial_ids)
        if not self.n:
            return rows, np.zeros(len(trial_ids), dtype=bool)
        known = (rows < self.n) & (self.trial_ids[np.minimum(rows, self.n - 1)] == trial_ids)
        return rows, known

    def _grow(self, delta: StudyDelta, new_at: np.ndarray) -> None:
        self.trial_ids = np.concatenate([self.trial_ids, delta.trial_ids[new_at]])
        self.numbers = np.concatenate([self.numbers, delta.numbers[new_at]])
        self.states = np.concatenate([self.states, delta.states[new_at]])
        self.starts = np.concatenate([self.starts, delta.starts[new_at]])
        self.completes = np.concatenate([self.completes, delta.completes[new_at]])
        self.values = np.concatenate([self.values, delta.values[new_at, : self.n_objectives]])
        self.run_ids = np.concatenate([self.run_ids, delta.run_ids[new_at]])
        for column in self.params.values():
            column.values = np.concatenate([column.values, np.full(len(new_at), np.nan)])

    def _assign(self, delta: StudyDelta, rows: np.ndarray) -> None:
        self.states[rows] = delta.states
        self.starts[rows] = delta.starts
        self.completes[rows] = delta.completes
        self.values[rows] = delta.values[:, : self.n_objectives]
        self.run_ids[rows] = delta.run_ids

    def _merge_params(self, delta: StudyDelta, rows: np.ndarray) -> None:
        for name, (at, values, info) in delta.params.items():
            column = self.params.get(name)
            if column is None:
                column = self.params[name] = ParamColumn(info, np.full(self.n, np.nan))
            else:
                column.info = _merge_info(column.info, info)
            if info.kind == "categorical":
                index = {c: i for i, c in enumerate(column.info.choices)}
                values = np.array([index[v] for v in values], dtype=float)
            column.values[rows[at]] = values

    def _merge_intermediate(
        self, delta: StudyDelta, rows: np.ndarray, finished_now: np.ndarray
    ) -> None:
        done = finished_now[delta.iv_rows]
        self.iv_rows = np.concatenate([self.iv_rows, rows[delta.iv_rows[done]]])
        self.iv_steps = np.concatenate([self.iv_steps, delta.iv_steps[done]])
        self.iv_values = np.concatenate([self.iv_values, delta.iv_values[done]])
        keep = ~np.isin(self.live_rows, rows)  # unfinished trials this delta did not read
        live = ~done
        self.live_rows = np.concatenate([self.live_rows[keep], rows[delta.iv_rows[live]]])
        self.live_steps = np.concatenate([self.live_steps[keep], delta.iv_steps[live]])
        self.live_values = np.concatenate([self.live_values[keep], delta.iv_values[live]])

    # -- derived -----------------------------------------------------------------------

    def count(self, *states: int) -> int:
        """Trials in any of these states."""
        return int(np.count_nonzero(np.isin(self.states, states)))

    def best_so_far(self, objective: int = 0) -> np.ndarray:
        """Per row, the best value of the completed trials up to it (NaN before the first)."""
        values = np.where(self.states == COMPLETE, self.values[:, objective], np.nan)
        better = np.fmax if self.directions[objective] == "maximize" else np.fmin
        return better.accumulate(values) if len(values) else values

    def best_row(self, objective: int = 0) -> int | None:
        """The row of the best completed trial (single objective), or None."""
        values = np.where(self.states == COMPLETE, self.values[:, objective], np.nan)
        if not np.isfinite(values).any():
            return None
        pick = np.nanargmax if self.directions[objective] == "maximize" else np.nanargmin
        return int(pick(np.where(np.isinf(values), np.nan, values)))

    def curve(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """One trial's intermediate values: (steps, values)."""
        mask = self.iv_rows == row
        if not mask.any():
            mask = self.live_rows == row
            return self.live_steps[mask], self.live_values[mask]
        return self.iv_steps[mask], self.iv_values[mask]

    def row_of_number(self, number: int) -> int | None:
        """The row of the trial with this number, or None."""
        hits = np.flatnonzero(self.numbers == number)
        return int(hits[0]) if len(hits) else None


def _merge_info(old: ParamInfo, new: ParamInfo) -> ParamInfo:
    if old.kind == "categorical" or new.kind == "categorical":
        choices = tuple(dict.fromkeys(old.choices + new.choices))
        return ParamInfo(old.name, "categorical", False, 0.0, len(choices) - 1.0, choices)
    return ParamInfo(old.name, new.kind, new.log, min(old.low, new.low), max(old.high, new.high))


def pareto_mask(values: np.ndarray, directions: tuple[str, ...]) -> np.ndarray:
    """Which rows of ``values`` (trials x objectives, all finite) no other row dominates.

    Two objectives take a sort and a running minimum (O(n log n)); more objectives
    compare in blocks of rows, so memory stays bounded.
    """
    if not len(values):
        return np.zeros(0, dtype=bool)
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    costs = values * signs  # every objective minimized
    if costs.shape[1] == 2:
        return _pareto_2d(costs)
    front = np.ones(len(costs), dtype=bool)
    for start in range(0, len(costs), 512):
        block = costs[start : start + 512, None, :]
        dominated = (
            np.all(costs[None] <= block, axis=2) & np.any(costs[None] < block, axis=2)
        ).any(axis=1)
        front[start : start + 512] = ~dominated
    return front


def _pareto_2d(costs: np.ndarray) -> np.ndarray:
    order = np.lexsort((costs[:, 1], costs[:, 0]))  # by first objective, then second
    first, second = costs[order, 0], costs[order, 1]
    best_before = np.concatenate([[np.inf], np.minimum.accumulate(second)[:-1]])
    record = second < best_before  # a new best second value: nothing earlier dominates it
    # Equal to the best so far: on the front only as an exact copy of the point that
    # set that best (any earlier point with a smaller first value dominates it).
    setter = np.maximum.accumulate(np.where(record, np.arange(len(order)), 0))
    previous_setter = np.concatenate([[0], setter[:-1]])
    copy = (second == best_before) & (first[previous_setter] == first)
    front = np.zeros(len(costs), dtype=bool)
    front[order] = record | copy
    return front
