"""Hyperparameter importances from trials already read (Qt-free, for a background thread).

Optuna's evaluators need a Study. Loading a 10,000-trial study from the project file
through Optuna's ORM takes about 6 s of CPU on a small machine, and the GUI has every
trial in a :class:`~lepton_desktop.core.tuning.reading.StudyView` already; so the
completed trials become Optuna trials handed to Optuna's PED-ANOVA evaluator (about
0.2 s for 10,000; fANOVA takes minutes at that size) through a Study that serves
them as they are. :func:`snapshot` copies what is needed on the view's thread, and
:func:`compute` runs anywhere.

Optuna's importance package pulls in fANOVA, scikit-learn's ensembles, scipy.stats and
pandas (about 2 s): the GUI imports this module at start, so Optuna is imported only
when importances are computed (:mod:`~lepton_desktop.core.tuning.ped_anova`).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

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
    from lepton_desktop.core.tuning import ped_anova  # Optuna's importance: seconds to import

    return ped_anova.importances(data)
