"""Reading a study's new and changed trials as numpy arrays (Qt-free).

:func:`read_delta` runs where the project's connection lives (the GUI's DB thread)
and turns the rows of the trials that are new or were unfinished at the last read
(``core/store/optuna_trials.py``) into a :class:`StudyDelta` of numpy arrays,
decoding parameters through Optuna's own distribution JSON
(``optuna.distributions.json_to_distribution`` and ``to_external_repr``).
:class:`~lepton_desktop.core.tuning.study_view.StudyView` merges the deltas.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np

from lepton_desktop.core.errors import NotFoundError
from lepton_desktop.core.store import optuna_trials as store

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

    from lepton_desktop.core.context import ProjectContext
    from lepton_desktop.core.store.optuna_trials import OptunaStudy, TrialRows

#: Trial states, in the order of their codes in :attr:`StudyView.states`.
STATES = ("RUNNING", "COMPLETE", "PRUNED", "FAIL", "WAITING")
RUNNING, COMPLETE, PRUNED, FAIL, WAITING = range(len(STATES))
_CODES = {name: code for code, name in enumerate(STATES)}
#: States of trials that may still change.
UNFINISHED = (RUNNING, WAITING)


@dataclasses.dataclass(frozen=True)
class StudyCursor:
    """Where incremental reading of one study stopped.

    Attributes:
        study_id: Optuna's id of the study.
        after_trial_id: the largest trial id read.
        pending: trials that were unfinished when read (read again next time).
    """

    study_id: int
    after_trial_id: int = 0
    pending: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class ParamInfo:
    """How a hyperparameter is drawn: numeric (maybe log scale) or one of choices.

    Attributes:
        name: the parameter's name.
        kind: ``float``, ``int`` or ``categorical``.
        log: sampled on a log scale (plots use a log axis).
        low, high: the range (numeric), or 0 and ``len(choices) - 1``.
        choices: the choices of a categorical parameter, as text.
    """

    name: str
    kind: str
    log: bool = False
    low: float = 0.0
    high: float = 0.0
    choices: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class StudyDelta:
    """New or changed trials, as arrays (row ``i`` of each array is one trial).

    Attributes:
        study: the study's row (directions, metric names, trial count).
        trial_ids, numbers, states: one entry per trial read, by trial id.
        starts, completes: Unix seconds (NaN when not set).
        values: ``(trials, objectives)``; NaN when the trial has no value.
        run_ids: the ``run_id`` user attribute, -1 when the trial has none.
        params: name -> (rows into this delta, values, info); the values of a
            categorical parameter are its choices as text, others are numbers.
        iv_rows, iv_steps, iv_values: intermediate values, grouped by trial, by step.
        rows_fetched: rows the SQL read returned (all tables together).
    """

    study: OptunaStudy
    trial_ids: np.ndarray
    numbers: np.ndarray
    states: np.ndarray
    starts: np.ndarray
    completes: np.ndarray
    values: np.ndarray
    run_ids: np.ndarray
    params: dict[str, tuple[np.ndarray, np.ndarray, ParamInfo]]
    iv_rows: np.ndarray
    iv_steps: np.ndarray
    iv_values: np.ndarray
    rows_fetched: int


def list_studies(ctx: ProjectContext) -> list[OptunaStudy]:
    """The Optuna studies stored in the project file."""
    return store.list_studies(ctx.conn)


def find_study(ctx: ProjectContext, name: str) -> OptunaStudy:
    """The Optuna study called ``name``. Raises NotFoundError."""
    return store.get_study(ctx.conn, name)


def read_delta(ctx: ProjectContext, cursor: StudyCursor) -> StudyDelta:
    """Read the trials that are new or may have changed since ``cursor`` (DB thread).

    Args:
        ctx: the open project.
        cursor: from :meth:`StudyView.cursor` (a fresh cursor reads every trial).
    """
    study = next(
        (s for s in store.list_studies(ctx.conn) if s.study_id == cursor.study_id), None
    )
    if study is None:
        raise NotFoundError(f"the Optuna study {cursor.study_id} is gone from this project")
    rows = store.read_trials(
        ctx.conn, cursor.study_id, after_trial_id=cursor.after_trial_id, reread=cursor.pending
    )
    return decode(study, rows)


def decode(study: OptunaStudy, rows: TrialRows) -> StudyDelta:
    """Turn stored rows into arrays (numbers, codes, decoded parameters)."""
    trials = rows.trials
    ids = np.array([t[0] for t in trials], dtype=np.int64)
    position = {int(t): i for i, t in enumerate(ids)}
    values = np.full((len(trials), max(1, len(study.directions))), np.nan)
    for trial_id, objective, value in rows.values:
        if objective < values.shape[1]:
            values[position[trial_id], objective] = np.nan if value is None else value
    run_ids = np.full(len(trials), -1, dtype=np.int64)
    for trial_id, key, value_json in rows.user_attrs:
        if key == "run_id":
            run_ids[position[trial_id]] = _as_int(value_json)
    iv_ids, iv_steps, iv_values = _columns(rows.intermediate, 3)
    return StudyDelta(
        study,
        ids,
        np.array([t[1] for t in trials], dtype=np.int64),
        np.array([_CODES.get(t[2], FAIL) for t in trials], dtype=np.int8),
        np.array([t[3] for t in trials], dtype=float),
        np.array([t[4] for t in trials], dtype=float),
        values,
        run_ids,
        _decode_params(rows.params, position),
        np.searchsorted(ids, iv_ids.astype(np.int64)),
        iv_steps,
        iv_values,
        rows.rows_fetched,
    )


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[np.ndarray]:
    """Float columns of rows (None becomes NaN), without one Python object per cell."""
    if not rows:
        return [np.zeros(0) for _ in range(width)]
    return [np.array(column, dtype=float) for column in zip(*rows, strict=True)]


def _as_int(value_json: str) -> int:
    try:
        return int(json.loads(value_json))
    except (TypeError, ValueError):
        return -1


def _decode_params(
    rows: list[tuple[int, str, float, str]], position: dict[int, int]
) -> dict[str, tuple[np.ndarray, np.ndarray, ParamInfo]]:
    grouped: dict[tuple[str, str], tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
    for trial_id, name, internal, dist_json in rows:
        at, internals = grouped[(name, dist_json)]
        at.append(position[trial_id])
        internals.append(internal)
    by_name: dict[str, list[tuple[np.ndarray, np.ndarray, BaseDistribution]]] = defaultdict(list)
    for (name, dist_json), (at, internals) in grouped.items():
        dist = distribution(dist_json)
        by_name[name].append((np.array(at, dtype=np.int64), _external(dist, internals), dist))
    out = {}
    for name, parts in by_name.items():
        info = _info(name, [d for _, _, d in parts])
        out[name] = (
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            info,
        )
    return out


@functools.lru_cache(maxsize=512)
def distribution(dist_json: str) -> BaseDistribution:
    """Optuna's distribution from its stored JSON (cached: rows repeat the same JSON)."""
    # Imported here: the GUI imports this module at start, Optuna costs ~0.4 s.
    from optuna.distributions import json_to_distribution

    return json_to_distribution(dist_json)


def _external(dist: BaseDistribution, internals: list[float]) -> np.ndarray:
    from optuna.distributions import CategoricalDistribution

    if isinstance(dist, CategoricalDistribution):
        choices = np.array(
            [str(dist.to_external_repr(i)) for i in range(len(dist.choices))], dtype=object
        )
        return choices[np.asarray(internals, dtype=np.int64)]
    return np.asarray(internals, dtype=float)


def _info(name: str, dists: list[BaseDistribution]) -> ParamInfo:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    categorical = [d for d in dists if isinstance(d, CategoricalDistribution)]
    if categorical:
        choices = dict.fromkeys(str(c) for d in categorical for c in d.choices)
        return ParamInfo(name, "categorical", False, 0.0, len(choices) - 1.0, tuple(choices))
    last: Any = dists[-1]
    kind = "int" if isinstance(last, IntDistribution) else "float"
    low = min(float(getattr(d, "low", 0.0)) for d in dists)
    high = max(float(getattr(d, "high", 0.0)) for d in dists)
    return ParamInfo(name, kind, bool(getattr(last, "log", False)), low, high)


def state_counts(ctx: ProjectContext, study_id: int) -> dict[str, int]:
    """Trials per Optuna state (``COMPLETE``, ``PRUNED``, ...) of a study in the file."""
    return store.state_counts(ctx.conn, study_id)
