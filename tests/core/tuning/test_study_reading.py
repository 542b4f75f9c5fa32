"""Reading studies from Optuna's tables in a project file: exact, incremental, fast enough."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from lepton_desktop.core.errors import NotFoundError
from lepton_desktop.core.project import Project
from lepton_desktop.core.store import optuna_trials
from lepton_desktop.core.tuning import importance, reading, trial_filter
from lepton_desktop.core.tuning.reading import COMPLETE, FAIL, PRUNED, RUNNING, StudyCursor
from lepton_desktop.core.tuning.study_view import StudyView, pareto_mask
from tests.study_factory import (
    add_with_optuna,
    add_with_sql,
    create_study,
    generate,
    make_study_file,
    storage_url,
)


def _view(project: Project, name: str = "study") -> StudyView:
    view = StudyView(reading.find_study(project, name))
    view.apply(reading.read_delta(project, view.cursor()))
    return view


def test_a_project_without_studies_lists_none(tmp_project: Path) -> None:
    with Project.open(tmp_project) as project:
        assert reading.list_studies(project) == []
        with pytest.raises(NotFoundError, match="no Optuna study called 'nope'"):
            reading.find_study(project, "nope")


def test_trials_written_with_sql_read_back_equal_through_optuna(tmp_project: Path) -> None:
    # The factory's fast path (used for 10,000-trial studies) writes what Optuna writes.
    other = tmp_project.with_name("other.lepton")
    Project.create(other).close()
    specs = generate(30, running=2, seed=3)
    by_api = create_study(tmp_project)
    add_with_optuna(by_api, specs)
    create_study(other)
    add_with_sql(other, "study", specs)
    by_sql = optuna.load_study(study_name="study", storage=storage_url(other))

    def key(t: optuna.trial.FrozenTrial) -> tuple:
        return (
            t.number,
            t.state,
            t.values,
            t.params,
            t.distributions,
            t.intermediate_values,
            t.user_attrs,
        )

    assert [key(t) for t in by_api.trials] == [key(t) for t in by_sql.trials]


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_the_view_holds_what_optuna_holds(tmp_project: Path) -> None:
    study = create_study(tmp_project)
    add_with_optuna(study, generate(40, running=3, seed=1))
    study.set_metric_names(["val_loss"])
    with Project.open(tmp_project) as project:
        view = _view(project)
    trials = optuna.load_study(study_name="study", storage=storage_url(tmp_project)).trials
    assert view.n == len(trials) == 40
    assert view.objective_name(0) == "val_loss"
    assert view.numbers.tolist() == [t.number for t in trials]
    assert [reading.STATES[s] for s in view.states] == [t.state.name for t in trials]
    for row, trial in enumerate(trials):
        value = view.values[row, 0]
        assert (trial.value if trial.value is not None else math.nan) == pytest.approx(
            value, nan_ok=True
        )
        shown = {n: c.text(row) for n, c in view.params.items() if c.text(row)}
        assert set(shown) == set(trial.params)
        for name, external in trial.params.items():
            column = view.params[name]
            if column.info.kind == "categorical":
                assert shown[name] == str(external)
            else:
                assert column.values[row] == pytest.approx(external)
        steps, values = view.curve(row)
        assert dict(
            zip(steps.astype(int).tolist(), values.tolist(), strict=True)
        ) == pytest.approx(trial.intermediate_values)
        assert view.run_ids[row] == trial.user_attrs.get("run_id", -1)
    lr = view.params["lr"].info
    assert (lr.kind, lr.log, lr.low, lr.high) == ("float", True, 1e-5, 1e-1)
    assert view.params["batch_size"].info.choices == ("32", "64", "128", "256")


def test_reads_after_the_first_fetch_only_new_and_unfinished_trials(tmp_project: Path) -> None:
    study = create_study(tmp_project)
    add_with_optuna(study, generate(20, seed=2))
    running = study.ask({"x": FloatDistribution(0, 1)})
    running.report(0.5, step=0)
    with Project.open(tmp_project) as project:
        view = StudyView(reading.find_study(project, "study"))
        first = reading.read_delta(project, view.cursor())
        view.apply(first)
        assert len(first.trial_ids) == 21
        assert view.cursor().pending == (first.trial_ids[-1],)

        idle = reading.read_delta(project, view.cursor())  # nothing new: the running one only
        assert idle.trial_ids.tolist() == [first.trial_ids[-1]]
        assert idle.rows_fetched == 1 + 1 + 1  # its row, its param, its one report
        assert not view.apply(idle).finished

        running.report(0.4, step=1)
        study.tell(running, 0.4)
        add_with_optuna(study, generate(3, seed=9))
        delta = reading.read_delta(project, view.cursor())
        assert len(delta.trial_ids) == 4  # the trial that ended + three new ones
        assert delta.rows_fetched < first.rows_fetched / 4
        change = view.apply(delta)
    assert (change.new, len(change.changed), change.finished) == (3, 1, 4)
    assert view.n == 24 and view.cursor().pending == ()
    assert view.curve(20)[1].tolist() == [0.5, 0.4]
    assert view.states[20] == COMPLETE and view.values[20, 0] == 0.4
    # Its points moved from the "unfinished" arrays to the append-only ones.
    assert len(view.live_rows) == 0 and 20 in set(view.iv_rows.tolist())


def test_the_sql_read_asks_for_exactly_the_trials_it_is_given(tmp_project: Path) -> None:
    make = make_study_file(tmp_project.with_name("s.lepton"), 50, running=2)
    with Project.open(make) as project:
        study = reading.find_study(project, "study")
        everything = optuna_trials.read_trials(project.conn, study.study_id)
        assert len(everything.trials) == 50
        tail = optuna_trials.read_trials(
            project.conn, study.study_id, after_trial_id=45, reread=[3, 7]
        )
    assert [t[0] for t in tail.trials] == [3, 7, 46, 47, 48, 49, 50]
    assert {r[0] for r in tail.params} <= {3, 7, 46, 47, 48, 49, 50}
    assert tail.rows_fetched < everything.rows_fetched / 5


def test_inf_nan_pruned_and_failed_trials(tmp_project: Path) -> None:
    study = create_study(tmp_project, directions=("maximize",))
    choice = {"c": CategoricalDistribution(["a", "b", "c"])}
    study.add_trials(
        [
            create_trial(params={"c": "a"}, distributions=choice, value=1.0),
            create_trial(
                params={"c": "c"},
                distributions=choice,
                value=math.inf,
                intermediate_values={0: math.nan, 1: -math.inf},
            ),
            # Optuna's tell keeps a pruned trial's last report as its value.
            create_trial(
                state=TrialState.PRUNED,
                params={"c": "b"},
                distributions=choice,
                value=2.0,
                intermediate_values={0: 2.0},
            ),
            create_trial(state=TrialState.FAIL, params={"c": "b"}, distributions=choice),
            create_trial(params={"c": "b"}, distributions=choice, value=3.0),
        ]
    )
    with Project.open(tmp_project) as project:
        view = _view(project)
    assert view.params["c"].info.choices == ("a", "b", "c")
    assert [view.params["c"].text(r) for r in range(5)] == ["a", "c", "b", "b", "b"]
    assert view.states.tolist() == [COMPLETE, COMPLETE, PRUNED, FAIL, COMPLETE]
    assert view.values[1, 0] == math.inf and view.values[2, 0] == 2.0
    assert np.isnan(view.values[3, 0])
    _steps, values = view.curve(1)
    assert np.isnan(values[0]) and values[1] == -math.inf
    assert view.best_so_far().tolist() == [1.0, math.inf, math.inf, math.inf, math.inf]
    assert view.best_row() == 4  # infinite values are not "best"


def test_a_ten_thousand_trial_study_reads_in_well_under_seconds(tmp_path: Path) -> None:
    path = make_study_file(tmp_path / "big.lepton", 10_000, running=3)
    with Project.open(path) as project:
        started = time.perf_counter()
        view = _view(project)
        seconds = time.perf_counter() - started
        counts = reading.state_counts(project, view.study.study_id)
    assert view.n == 10_000
    assert view.count(COMPLETE) == counts["COMPLETE"] and view.count(RUNNING) == 3
    assert seconds < 5.0  # about 0.3 s alone; generous for a busy 2-core machine
    assert len(view.cursor().pending) == 3


def test_filter_and_sort(tmp_path: Path) -> None:
    path = make_study_file(tmp_path / "f.lepton", 300, running=2)
    with Project.open(path) as project:
        view = _view(project)
    complete = trial_filter.filter_rows(view, (COMPLETE,), "")
    assert len(complete) == view.count(COMPLETE)
    rows = trial_filter.filter_rows(view, None, "lr<0.001 activation=relu")
    assert len(rows) > 0
    assert (view.params["lr"].values[rows] < 0.001).all()
    assert {view.params["activation"].text(r) for r in rows} == {"relu"}
    texts = trial_filter.TrialTexts(view)
    gelu = trial_filter.filter_rows(view, None, "gelu", texts)
    assert {view.params["activation"].text(r) for r in gelu} == {"gelu"}
    by_value = trial_filter.sort_rows(view, np.arange(view.n), "value:0", descending=False)
    values = view.values[by_value, 0]
    finite = np.isfinite(values)
    assert finite[: finite.sum()].all()  # trials without a value go last
    assert (np.diff(values[finite]) >= 0).all()
    down = trial_filter.sort_rows(view, np.arange(view.n), "param:hidden", descending=True)
    hidden = view.params["hidden"].values[down]
    assert (np.diff(hidden[np.isfinite(hidden)]) <= 0).all()


def test_pareto_front_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    for k in (2, 3):
        values = np.round(rng.random((300, k)), 1)  # many ties
        directions = ("minimize", "maximize", "minimize")[:k]
        costs = values * np.array([1, -1, 1][:k])
        brute = np.array(
            [
                not any(
                    (costs[j] <= costs[i]).all() and (costs[j] < costs[i]).any()
                    for j in range(len(costs))
                )
                for i in range(len(costs))
            ]
        )
        assert (pareto_mask(values, directions) == brute).all()


def test_importances_equal_optunas_on_the_loaded_study(tmp_path: Path) -> None:
    path = make_study_file(tmp_path / "i.lepton", 400)
    with Project.open(path) as project:
        view = _view(project)
    data = importance.snapshot(view)
    assert data.n_trials == view.count(COMPLETE)
    ranked = importance.compute(data)
    loaded = optuna.load_study(study_name="study", storage=storage_url(path))
    expected = optuna.importance.get_param_importances(
        loaded, evaluator=optuna.importance.PedAnovaImportanceEvaluator()
    )
    assert list(ranked) == list(expected) and next(iter(ranked)) == "lr"
    assert ranked == pytest.approx(expected)
    assert importance.compute(importance.snapshot(StudyView(view.study))) == {}


def test_a_deleted_study_is_reported(tmp_project: Path) -> None:
    create_study(tmp_project)
    with Project.open(tmp_project) as project:
        study = reading.find_study(project, "study")
        optuna.delete_study(study_name="study", storage=storage_url(tmp_project))
        with pytest.raises(NotFoundError, match="gone"):
            reading.read_delta(project, StudyCursor(study.study_id))
