"""Hyperparameter importances from trials already read (Qt-free, for a background thread).

Optuna's evaluators need a Study. Loading a 10,000-trial study from the project file
through Optuna's ORM takes about 6 s of CPU on a small machine, and the GUI has every
trial in a :class:`~lepton_desktop.core.tuning.reading.StudyView` already; so the
completed trials become Optuna trials handed to Optuna's PED-ANOVA evaluator (about
0.2 s for 10,000; fANOVA takes minutes at that size) through a Study that serves
them as they are. :func:`snapshot` copies what is needed on the view's thread, and
:func:`compute` runs anywhere.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Container
from typing import TYPE_CHECKING

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from lepton_desktop.core.tuning.reading import COMPLETE, ParamInfo

if TYPE_CHECKING:
    from lepton_desktop.core.tuning.study_view import StudyView

#: Fewer completed trials than this give no meaningful importances.
MIN_TRIALS = 4


@dataclasses.dataclass(frozen=True)
class ImportanceInput:
    """The completed trials of one objective, copied from a view.

    Attributes:
        direction: ``minimize`` or ``maximize``.
        values: the objective per completed trial.
        params: name -> (info, values per completed trial; NaN when not drawn).
    """

    direction: str
    values: np.ndarray
    params: dict[str, tuple[ParamInfo, np.ndarray]]

    @property
    def n_trials(self) -> int:
        """Completed trials in the snapshot."""
        return len(self.values)


def snapshot(view: StudyView, objective: int = 0) -> ImportanceInput:
    """Copy the completed trials' values and parameters (on the view's own thread)."""
    done = (view.states == COMPLETE) & np.isfinite(view.values[:, objective])
    params = {
        name: (column.info, column.values[done].copy()) for name, column in view.params.items()
    }
    return ImportanceInput(view.directions[objective], view.values[done, objective].copy(), params)


def compute(data: ImportanceInput) -> dict[str, float]:
    """Importances (summing to 1), most important first; empty below :data:`MIN_TRIALS`."""
    if data.n_trials < MIN_TRIALS or not data.params:
        return {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created" line
    distributions = {name: _distribution(info) for name, (info, _) in data.params.items()}
    trials = []
    for i, value in enumerate(data.values):
        params = {}
        for name, (info, column) in data.params.items():
            if not np.isnan(column[i]):
                params[name] = _external(info, column[i])
        trials.append(
            FrozenTrial(
                number=i,
                trial_id=i,
                state=TrialState.COMPLETE,
                value=float(value),
                values=None,
                datetime_start=None,
                datetime_complete=None,
                params=params,
                distributions={k: distributions[k] for k in params},
                user_attrs={},
                system_attrs={},
                intermediate_values={},
            )
        )
    study = _TrialsStudy(trials, data.direction)
    importances = get_param_importances(study, evaluator=PedAnovaImportanceEvaluator())
    return {name: float(v) for name, v in importances.items()}


class _TrialsStudy(optuna.Study):
    """A Study whose completed trials are the given list, used as is.

    ``study.add_trials`` deep-copies and validates every trial (about 0.6 s for
    10,000); the evaluators only call ``get_trials``, so the list is handed out as is.
    """

    def __init__(self, trials: list[FrozenTrial], direction: str) -> None:
        storage = optuna.storages.InMemoryStorage()
        direction_enum = (
            StudyDirection.MAXIMIZE if direction == "maximize" else StudyDirection.MINIMIZE
        )
        storage.create_new_study([direction_enum], "importance")
        super().__init__(study_name="importance", storage=storage)
        self._trials = trials

    def get_trials(
        self, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        """The trials (all completed), filtered by state like Optuna's."""
        trials = self._trials if states is None else [t for t in self._trials if t.state in states]
        return copy.deepcopy(trials) if deepcopy else trials


def _distribution(info: ParamInfo) -> BaseDistribution:
    if info.kind == "categorical":
        return CategoricalDistribution(list(info.choices))
    if info.kind == "int":
        return IntDistribution(int(info.low), int(info.high), log=info.log)
    return FloatDistribution(info.low, info.high, log=info.log)


def _external(info: ParamInfo, value: float) -> object:
    if info.kind == "categorical":
        return info.choices[int(value)]
    if info.kind == "int":
        return int(value)
    return float(value)
