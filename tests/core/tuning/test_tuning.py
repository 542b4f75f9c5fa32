"""Tuning studies on a real project file with real Optuna: create, run, harvest, extend."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from lepton_desktop.core.errors import InvalidOptionError, NotFoundError
from lepton_desktop.core.jobs import run_job
from lepton_desktop.core.project import Project
from lepton_desktop.core.store import migrations
from lepton_desktop.core.store import tuning as tuning_store
from lepton_desktop.core.store.db import APPLICATION_ID, backup_to, connect, read_header
from lepton_desktop.workers.training import train_job
from lepton_desktop.workers.tuning import tune_job
from tests.helpers import snapshot

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "resources" / "sample_data"
FIXTURES = REPO / "tests" / "fixtures"


@pytest.fixture(scope="module")
def iris_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tuning") / "iris.lepton"
    with Project.create(path) as project:
        project.import_dataset(SAMPLES / "iris.csv", "iris", target="species")
    return path


@pytest.fixture
def iris(iris_template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "iris.lepton"
    shutil.copy(iris_template, path)
    return path


def _run_study(path: Path, name: str, n_trials: int | None = None) -> dict:
    with Project.open(path) as project:
        job_id = project.tuning.queue(name, n_trials)
    job = run_job(path, job_id, tune_job)
    assert job.status == "succeeded", job.error
    return job.result or {}


@pytest.fixture(scope="module")
def finished(iris_template: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A five-trial study run to its end in a copy of the iris project."""
    path = tmp_path_factory.mktemp("finished") / "p.lepton"
    shutil.copy(iris_template, path)
    with Project.open(path) as project:
        study = project.tuning.create("iris", "mlp", n_trials=5, epochs=4, seed=1)
        assert study.name == "iris-mlp" and study.status == "created"
        assert study.storage is None and study.optuna_study_id is not None
    return path, _run_study(path, "iris-mlp")


def _copy(path: Path, target: Path) -> Path:
    source = connect(path, readonly=True)
    try:
        backup_to(source, target)
    finally:
        source.close()
    return target


def test_the_study_lives_in_the_project_file_and_optuna_opens_it(finished) -> None:
    path, result = finished
    assert result["status"] == "finished" and result["n_trials"] == 5
    study = optuna.load_study(study_name="iris-mlp", storage=f"sqlite:///{path}")
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert trials and all(t.intermediate_values for t in trials)  # per-epoch values
    assert all(t.user_attrs["params_count"] > 0 for t in trials)
    assert study.metric_names == ["f1"] and study.direction.name == "MAXIMIZE"
    assert study.best_value == result["best_value"]
    # Optuna's tables beside ours never touch our header.
    assert read_header(path) == (APPLICATION_ID, migrations.SCHEMA_VERSION)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == migrations.SCHEMA_VERSION
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    with Project.open(path) as project:
        assert project.integrity_ok()
        assert project.tuning.storage_url("iris-mlp") == f"sqlite:///{path.resolve()}?timeout=30"


def test_only_the_best_trial_becomes_a_model_with_its_lineage(finished) -> None:
    path, result = finished
    with Project.open(path) as project:
        study = project.tuning.get("iris-mlp")
        (model,) = project.models.list()
        assert study.best_model == model.ref == result["model"]
        assert model.params["study"] == "iris-mlp" and model.params["trial"] == study.best_trial
        assert project.runs.get(model.run_id or 0).status == "finished"
        (entry,) = project.info()["studies"]
        assert entry["model"] == model.ref and entry["trials"]["complete"] >= 1
        assert sum(entry["trials"].values()) == 5


def test_promote_and_retrain_the_best_on_train_and_val(finished, tmp_path: Path) -> None:
    path = _copy(finished[0], tmp_path / "copy.lepton")
    with Project.open(path) as project:
        champion = project.tuning.promote_best("iris-mlp")
        assert champion.aliases == ("champion",)
        run, job_id = project.tuning.queue_retrain_best("iris-mlp")
        best_epoch = optuna.load_study(
            study_name="iris-mlp", storage=project.tuning.storage_url("iris-mlp")
        ).best_trial.user_attrs["best_epoch"]
    assert run.config["train_on"] == "train+val" and run.config["epochs"] == max(1, best_epoch)
    job = run_job(path, job_id, train_job)
    assert job.status == "succeeded", job.error
    with Project.open(path) as project:
        model = project.models.get(job.result["model"])
        assert model.params["train_on"] == "train+val" and model.params["study"] == "iris-mlp"


def test_a_finished_study_is_extended_by_queueing_more(finished, tmp_path: Path) -> None:
    path = _copy(finished[0], tmp_path / "copy.lepton")
    with Project.open(path) as project, pytest.raises(InvalidOptionError, match="finished its 5"):
        project.tuning.queue("iris-mlp")
    result = _run_study(path, "iris-mlp", 2)
    assert result["n_trials"] == 7 and result["status"] == "finished"


@pytest.mark.parametrize(
    ("sampler", "pruner", "extra"),
    [
        ("gp", "hyperband", {}),
        ("cmaes", "median", {}),
        ("grid", "none", {"space": {"lr": {"type": "float", "low": 0.001, "high": 0.1}}}),
        ("random", "median", {"objectives": ["f1", "params"]}),
        ("tpe", "median", {"objectives": ["accuracy", "latency"]}),
    ],
)
def test_every_sampler_and_pruner_runs(iris: Path, sampler: str, pruner: str, extra: dict) -> None:
    with Project.open(iris) as project:
        study = project.tuning.create(
            "iris", "mlp", sampler=sampler, pruner=pruner, n_trials=3, epochs=2, **extra
        )
    result = _run_study(iris, study.name)
    assert result["status"] == "finished" and result["model"]
    if "objectives" in extra:
        assert study.pruner == "none" and study.directions == ["maximize", "minimize"]
        assert result["pareto"] and all(len(p["values"]) == 2 for p in result["pareto"])


def test_a_grid_study_stops_at_the_end_of_its_grid(iris: Path) -> None:
    space = {"optimizer": {"type": "categorical", "choices": ["adam", "sgd"]}}
    with Project.open(iris) as project:
        study = project.tuning.create("iris", "mlp", sampler="grid", n_trials=10, space=space)
    assert study.n_trials == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sampler": "anneal"}, "--sampler 'anneal': choose one of tpe, gp, grid, random, cmaes"),
        ({"pruner": "asha"}, "--pruner 'asha': choose one of median, hyperband, none"),
        ({"n_trials": 0}, "--trials 0: must be a whole number of at least 1"),
        ({"jobs": 0}, "--jobs 0"),
        ({"epochs": 0}, "--epochs 0"),
        ({"space": {}}, "the search space is empty"),
        ({"space": {"lr": {"type": "float", "low": 1, "high": 0.1}}}, "'lr': low 1 must be below"),
        ({"metric": "auc"}, "--metric 'auc': a classification study optimizes one of f1"),
        ({"metric": "mse"}, "--metric 'mse'"),
        ({"objectives": ["params", "f1"]}, "params and latency only after a metric"),
        ({"objectives": ["f1", "f1"]}, "an objective is repeated"),
        ({"metric": "accuracy", "objectives": ["f1", "params"]}, "contradicts --objectives"),
        ({"sampler": "cmaes", "objectives": ["f1", "params"]}, "cmaes optimizes one objective"),
        ({"storage": "postgresql://lepton@127.0.0.1:1/x"}, "--storage postgresql://lepton@"),
        ({"storage": "not a url"}, "--storage not a url: give a URL"),
        ({"storage": "journal:///no/such/folder/s.log"}, "no such folder"),
        ({"name": "a b"}, "--study 'a b'"),
        ({"arch": "cnn"}, "--arch cnn trains on images data"),
        ({"arch": "gan"}, "--arch 'gan'"),
        ({"dataset": "nope"}, "nope"),
    ],
)
def test_bad_options_are_refused_and_nothing_is_written(
    iris: Path, options: dict, message: str
) -> None:
    before = snapshot(iris)
    arguments = {"dataset": "iris", "arch": "mlp"} | options
    with Project.open(iris) as project, pytest.raises((InvalidOptionError, NotFoundError)) as info:
        project.tuning.create(arguments.pop("dataset"), arguments.pop("arch"), **arguments)
    assert message in str(info.value) and "\n" not in str(info.value)
    after = snapshot(iris)
    assert after == before and after["integrity"] == "ok"
    assert "studies" not in after["tables"]  # no Optuna study (not even its tables)


def test_a_name_in_use_is_refused_without_writing(iris: Path) -> None:
    with Project.open(iris) as project:
        project.tuning.create("iris", "mlp", name="s1", n_trials=1)
    before = snapshot(iris)
    with Project.open(iris) as project, pytest.raises(InvalidOptionError, match="--resume s1"):
        project.tuning.create("iris", "mlp", name="s1", n_trials=1)
    assert snapshot(iris) == before


def test_optuna_tables_do_not_disturb_upgrading_an_old_project(tmp_path: Path) -> None:
    path = tmp_path / "old.lepton"
    shutil.copy(FIXTURES / "schema_v1.lepton", path)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(study_name="theirs", storage=f"sqlite:///{path}")
    assert read_header(path) == (APPLICATION_ID, 1)
    with Project.open(path, upgrade=True) as project:
        assert project.schema_version == migrations.SCHEMA_VERSION and project.integrity_ok()
        assert project.tuning.list() == []
    assert optuna.load_study(study_name="theirs", storage=f"sqlite:///{path}").trials == []


def test_a_study_that_cannot_finish_a_trial_fails_with_the_reason(iris: Path) -> None:
    # Plain values fix options: SGD at lr 9 without clipping diverges (pruned trials).
    space = {"lr": 9.0, "optimizer": "sgd", "grad_clip": 0.0, "momentum": 0.99}
    with Project.open(iris) as project:
        study = project.tuning.create("iris", "mlp", n_trials=2, epochs=3, space=space)
        job_id = project.tuning.queue(study.name)
    job = run_job(iris, job_id, tune_job)
    with Project.open(iris) as project:
        study = project.tuning.get(study.name)
    assert job.status == "failed" and study.status == "failed"
    assert "no trial completed (2 pruned, 0 failed)" in (study.error or "")


def test_a_journal_file_study_is_copied_into_the_project_when_it_ends(
    iris: Path, tmp_path: Path
) -> None:
    log = tmp_path / "shared" / "study.log"
    log.parent.mkdir()
    with Project.open(iris) as project:
        study = project.tuning.create("iris", "mlp", n_trials=2, epochs=2, storage=str(log))
        assert study.storage == str(log) and study.optuna_study_id is None
    result = _run_study(iris, study.name)
    assert log.stat().st_size > 0 and result["storage"] == str(log)
    with Project.open(iris) as project:
        study = project.tuning.get(study.name)
        assert study.optuna_study_id is not None and study.best_model == result["model"]
    copy = optuna.load_study(study_name=study.name, storage=f"sqlite:///{iris}")
    assert len(copy.trials) == 2 and copy.user_attrs["lepton"]["arch"] == "mlp"


def test_a_study_stopped_after_its_trials_is_finished_by_queueing_it(
    finished, tmp_path: Path
) -> None:
    path = _copy(finished[0], tmp_path / "copy.lepton")
    with Project.open(path) as project:  # as if stopped while retraining its best trial
        project.models.archive("iris-mlp:1")
        tuning_store.update(project.conn, "iris-mlp", status="stopped", best_model_id=None)
    result = _run_study(path, "iris-mlp")
    assert result["n_trials"] == 5 and result["model"] == "iris-mlp:2"


def test_a_finalize_lease_left_by_a_dead_process_is_taken_over(finished, tmp_path: Path) -> None:
    path = _copy(finished[0], tmp_path / "copy.lepton")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    with sqlite3.connect(path) as conn:  # as a process killed while registering would leave it
        conn.execute(
            "UPDATE tuning_studies SET finalizing_pid = ?, finalizing_at = ? WHERE name = ?",
            (int(dead.stdout), time.time(), "iris-mlp"),
        )
    result = _run_study(path, "iris-mlp", 1)
    assert result["n_trials"] == 6 and result["status"] == "finished"
