"""Reading Optuna's own tables in a project file, incrementally.

A tuning study lives in Optuna's RDB storage inside the project file (DESIGN §3.2),
so its trials can be read with plain SQL on Optuna's tables (``studies``,
``study_directions``, ``trials``, ``trial_params``, ``trial_values``,
``trial_intermediate_values``, ``trial_user_attributes``) without loading the whole
study through Optuna's ORM. This module only ever reads those tables; Optuna writes
them.

Reads are incremental: :func:`read_trials` returns the trials whose id is above the
last one seen, plus the listed trials that were unfinished (``RUNNING``/``WAITING``)
the last time. SQLite has one writer at a time and trial ids grow with each insert,
so once a trial id has been seen every smaller id is already committed; finished
trials never change again (Optuna refuses to modify them). Each read runs in one
read transaction, so a trial and its values come from the same snapshot.

The records are immutable and safe to hand to another thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
from collections.abc import Iterator, Sequence

from lepton_desktop.core.errors import NotFoundError

_STUDY_TABLES = ("studies", "study_directions", "trials")
# Optuna stores +-inf as NULL with a type column, and NaN (intermediate values) as
# NULL; 9e999 is SQLite's literal for +inf. NULL reaches numpy as NaN.
_VALUE = "CASE {type} WHEN 'INF_POS' THEN 9e999 WHEN 'INF_NEG' THEN -9e999 ELSE {value} END"
# Unix seconds from Optuna's naive UTC datetime strings.
_SECONDS = "(julianday({col}) - 2440587.5) * 86400.0"
_SELECTED = "(t.trial_id > ? OR t.trial_id IN (SELECT value FROM json_each(?)))"


@dataclasses.dataclass(frozen=True)
class OptunaStudy:
    """One study of Optuna's ``studies`` table.

    Attributes:
        study_id: Optuna's id (``studies.study_id``).
        name: the study's name.
        directions: ``MINIMIZE`` or ``MAXIMIZE`` per objective, in objective order.
        metric_names: names Optuna was given for the objectives (empty: none set).
        n_trials: trials of every state.
    """

    study_id: int
    name: str
    directions: tuple[str, ...]
    metric_names: tuple[str, ...]
    n_trials: int


@dataclasses.dataclass(frozen=True)
class TrialRows:
    """Rows of the trials read by one :func:`read_trials` call, as stored.

    Attributes:
        trials: ``(trial_id, number, state, start_s, complete_s)`` ordered by trial id;
            times in Unix seconds or None.
        values: ``(trial_id, objective, value)``; value None only for a NULL in a
            malformed row.
        params: ``(trial_id, name, internal_value, distribution_json)``.
        intermediate: ``(trial_id, step, value)`` ordered by trial id and step; a
            NaN report is None.
        user_attrs: ``(trial_id, key, value_json)``.
    """

    trials: list[tuple[int, int, str, float | None, float | None]]
    values: list[tuple[int, int, float | None]]
    params: list[tuple[int, str, float, str]]
    intermediate: list[tuple[int, int, float | None]]
    user_attrs: list[tuple[int, str, str]]

    @property
    def rows_fetched(self) -> int:
        """How many rows the read returned, all tables together (proves incrementality)."""
        return (
            len(self.trials)
            + len(self.values)
            + len(self.params)
            + len(self.intermediate)
            + len(self.user_attrs)
        )


def has_studies(conn: sqlite3.Connection) -> bool:
    """True when Optuna's tables exist in this file (a study was ever created in it)."""
    names = {
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (?, ?, ?)",
            _STUDY_TABLES,
        )
    }
    return names == set(_STUDY_TABLES)


def list_studies(conn: sqlite3.Connection) -> list[OptunaStudy]:
    """Every Optuna study in the file, oldest first (none when Optuna never ran here)."""
    if not has_studies(conn):
        return []
    with _snapshot(conn):
        rows = conn.execute("SELECT study_id, study_name FROM studies ORDER BY study_id")
        return [_study(conn, study_id, name) for study_id, name in rows.fetchall()]


def get_study(conn: sqlite3.Connection, name: str) -> OptunaStudy:
    """The Optuna study called ``name``.

    Raises:
        NotFoundError: there is no such study in this file.
    """
    row = None
    if has_studies(conn):
        row = conn.execute(
            "SELECT study_id, study_name FROM studies WHERE study_name = ?", (name,)
        ).fetchone()
    if row is None:
        raise NotFoundError(f"no Optuna study called {name!r} in this project")
    return _study(conn, row[0], row[1])


def _study(conn: sqlite3.Connection, study_id: int, name: str) -> OptunaStudy:
    directions = tuple(
        r[0]
        for r in conn.execute(
            "SELECT direction FROM study_directions WHERE study_id = ? ORDER BY objective",
            (study_id,),
        )
    )
    (n_trials,) = conn.execute(
        "SELECT COUNT(*) FROM trials WHERE study_id = ?", (study_id,)
    ).fetchone()
    return OptunaStudy(study_id, name, directions, _metric_names(conn, study_id), n_trials)


def _metric_names(conn: sqlite3.Connection, study_id: int) -> tuple[str, ...]:
    # ``study.set_metric_names`` keeps them in a system attribute.
    row = conn.execute(
        "SELECT value_json FROM study_system_attributes WHERE study_id = ? "
        "AND key = 'study:metric_names'",
        (study_id,),
    ).fetchone()
    if row is None:
        return ()
    names = json.loads(row[0])
    return tuple(str(n) for n in names) if isinstance(names, list) else ()


def read_trials(
    conn: sqlite3.Connection,
    study_id: int,
    *,
    after_trial_id: int = 0,
    reread: Sequence[int] = (),
) -> TrialRows:
    """Trials of a study with an id above ``after_trial_id``, plus those in ``reread``.

    Args:
        conn: an open project connection.
        study_id: Optuna's study id.
        after_trial_id: the largest trial id read before (0: read everything).
        reread: ids of trials read before that may have changed since (those that
            were ``RUNNING`` or ``WAITING``).

    Returns:
        The rows of exactly those trials, with their values, parameters,
        intermediate values and user attributes.
    """
    args = (study_id, after_trial_id, json.dumps([int(i) for i in reread]))
    with _snapshot(conn):
        trials = conn.execute(
            f"SELECT t.trial_id, t.number, t.state, {_SECONDS.format(col='t.datetime_start')}, "
            f"{_SECONDS.format(col='t.datetime_complete')} FROM trials t "
            f"WHERE t.study_id = ? AND {_SELECTED} ORDER BY t.trial_id",
            args,
        ).fetchall()
        if not trials:
            return TrialRows([], [], [], [], [])
        return TrialRows(trials, *_children(conn, args))


def _children(conn: sqlite3.Connection, args: tuple[object, ...]) -> tuple[list, ...]:
    join = f"JOIN trials t ON t.trial_id = c.trial_id WHERE t.study_id = ? AND {_SELECTED}"
    values = conn.execute(
        f"SELECT c.trial_id, c.objective, {_VALUE.format(type='c.value_type', value='c.value')} "
        f"FROM trial_values c {join}",
        args,
    ).fetchall()
    params = conn.execute(
        f"SELECT c.trial_id, c.param_name, c.param_value, c.distribution_json "
        f"FROM trial_params c {join} ORDER BY c.trial_id, c.param_id",
        args,
    ).fetchall()
    value = _VALUE.format(type="c.intermediate_value_type", value="c.intermediate_value")
    intermediate = conn.execute(
        f"SELECT c.trial_id, c.step, {value} FROM trial_intermediate_values c {join} "
        f"ORDER BY c.trial_id, c.step",
        args,
    ).fetchall()
    attrs = conn.execute(
        f"SELECT c.trial_id, c.key, c.value_json FROM trial_user_attributes c {join}",
        args,
    ).fetchall()
    return values, params, intermediate, attrs


@contextlib.contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """One read transaction around several SELECTs (joins a transaction already open)."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def state_counts(conn: sqlite3.Connection, study_id: int) -> dict[str, int]:
    """Trials per state (``COMPLETE``, ``PRUNED``, ...) of a study: a cheap progress read
    ({} when Optuna never ran in this file)."""
    if not has_studies(conn):
        return {}
    rows = conn.execute(
        "SELECT state, COUNT(*) FROM trials WHERE study_id = ? GROUP BY state", (study_id,)
    ).fetchall()
    return {str(state): int(n) for state, n in rows}


def study_names(conn: sqlite3.Connection) -> list[str]:
    """Names of the Optuna studies in this file, oldest first (none before the first)."""
    if not has_studies(conn):
        return []
    return [r[0] for r in conn.execute("SELECT study_name FROM studies ORDER BY study_id")]
