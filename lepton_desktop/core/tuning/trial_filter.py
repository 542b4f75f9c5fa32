"""Filtering and sorting a study's trials for the trials table (Qt-free, numpy).

A query is words, all of which a trial must match. A word ``name<value`` (also
``<=``, ``>``, ``>=``, ``=``, ``!=``) compares a parameter, ``value`` (the first
objective), ``number`` or ``run``; ``name=choice`` matches a categorical choice. Any
other word must appear in the trial's parameters as text (``relu``, ``lr=0.00``).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lepton_desktop.core.tuning.reading import STATES, UNFINISHED
from lepton_desktop.core.tuning.study_view import StudyView

_COMPARISON = re.compile(r"^([A-Za-z_][\w.]*)(<=|>=|!=|<|>|=)(.+)$")
_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
    "!=": operator.ne,
}
#: Each state code's place in alphabetical order (COMPLETE, FAIL, PRUNED, ...).
_STATE_RANK = np.argsort(np.argsort(np.array(STATES)))
#: Sort keys other than parameters (``param:NAME``) and objectives (``value:K``).
KEYS = ("number", "state", "duration", "run")


class TrialTexts:
    """Each trial's parameters as ``name=value`` text, cached for finished trials.

    Args:
        view: the study's view (texts follow its rows).
    """

    def __init__(self, view: StudyView) -> None:
        self.view = view
        self._texts: list[str] = []
        self._revision = -1

    def texts(self) -> list[str]:
        """One text per row of the view (rebuilt only for new and unfinished trials)."""
        view = self.view
        if view.revision != self._revision:
            unfinished = set(np.flatnonzero(np.isin(view.states, UNFINISHED)).tolist())
            for row in range(view.n):
                if row >= len(self._texts):
                    self._texts.append(self._text(row))
                elif row in unfinished:
                    self._texts[row] = self._text(row)
            self._revision = view.revision
        return self._texts

    def _text(self, row: int) -> str:
        return " ".join(
            f"{name}={column.text(row)}"
            for name, column in self.view.params.items()
            if column.text(row)
        )


def filter_rows(
    view: StudyView, states: Sequence[int] | None, query: str, texts: TrialTexts | None = None
) -> np.ndarray:
    """Rows of the trials in ``states`` (None: any) that match every word of ``query``."""
    keep = np.ones(view.n, dtype=bool) if states is None else np.isin(view.states, states)
    for word in query.split():
        keep &= _match(view, word, texts)
    return np.flatnonzero(keep)


def _match(view: StudyView, word: str, texts: TrialTexts | None) -> np.ndarray:
    found = _COMPARISON.match(word)
    if found:
        name, op, raw = found.groups()
        compared = _compare(view, name, _OPERATORS[op], raw)
        if compared is not None:
            return compared
    lowered = word.lower()
    all_texts = (texts or TrialTexts(view)).texts()
    return np.fromiter((lowered in t.lower() for t in all_texts), dtype=bool, count=view.n)


def _compare(
    view: StudyView, name: str, op: Callable[[np.ndarray, object], np.ndarray], raw: str
) -> np.ndarray | None:
    column = view.params.get(name)
    if column is not None and column.info.kind == "categorical":
        if raw not in column.info.choices or op not in (operator.eq, operator.ne):
            return None
        return op(column.values, float(column.info.choices.index(raw)))
    try:
        number = float(raw)
    except ValueError:
        return None
    values = _numbers(view, name)
    if values is None:
        return None
    with np.errstate(invalid="ignore"):
        return op(values, number) & np.isfinite(values)


def _numbers(view: StudyView, name: str) -> np.ndarray | None:
    if name in view.params:
        return view.params[name].values
    if name == "value":
        return view.values[:, 0]
    if name == "number":
        return view.numbers.astype(float)
    if name == "run":
        return np.where(view.run_ids >= 0, view.run_ids, np.nan).astype(float)
    return None


def sort_rows(view: StudyView, rows: np.ndarray, key: str, descending: bool) -> np.ndarray:
    """``rows`` ordered by ``key`` (see :data:`KEYS`); trials without a value go last."""
    values = sort_values(view, key)[rows]
    missing = ~np.isfinite(values)
    ordered = np.where(missing, 0.0, -values if descending else values)
    order = np.lexsort((view.numbers[rows], ordered, missing))
    return rows[order]


def sort_values(view: StudyView, key: str) -> np.ndarray:
    """The numbers a column sorts by, per row."""
    if key == "number":
        return view.numbers.astype(float)
    if key == "state":
        return _STATE_RANK[view.states].astype(float)
    if key == "duration":
        return view.completes - view.starts
    if key == "run":
        return np.where(view.run_ids >= 0, view.run_ids, np.nan).astype(float)
    if key.startswith("value:"):
        return view.values[:, int(key.split(":", 1)[1])]
    if key.startswith("param:"):
        column = view.params.get(key.split(":", 1)[1])
        return column.values if column is not None else np.full(view.n, np.nan)
    raise KeyError(key)
