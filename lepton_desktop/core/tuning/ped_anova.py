"""Optuna's PED-ANOVA importance evaluator over trials already read (see ``importance``).

Imported only when importances are computed: ``optuna.importance`` pulls in fANOVA,
scikit-learn's ensembles, scipy.stats and pandas.
"""

from __future__ import annotations

import copy
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

if TYPE_CHECKING:
    from lepton_desktop.core.tuning.importance import ImportanceInput
    from lepton_desktop.core.tuning.reading import ParamInfo


def importances(data: ImportanceInput) -> dict[str, float]:
    """Importances (summing to 1) of the snapshot's parameters, most important first."""
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
