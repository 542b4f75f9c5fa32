"""Training through the real loop on the bundled sample data (CPU, small budgets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lepton_desktop.core.errors import InvalidOptionError, LeptonError, NotFoundError
from lepton_desktop.core.project import Project
from tests.helpers import snapshot, write_csv

SAMPLES = Path(__file__).resolve().parents[3] / "resources" / "sample_data"


@pytest.fixture
def project(tmp_project: Path):
    with Project.open(tmp_project) as p:
        p.import_dataset(SAMPLES / "iris.csv", "iris", target="species")
        yield p


def test_mlp_trains_evaluates_and_registers(project: Project) -> None:
    result = project.train("iris", arch="mlp", epochs=15, seed=1)
    assert set(result.metrics) >= {"accuracy", "precision", "recall", "f1"}
    assert result.metrics["accuracy"] > result.baseline["accuracy"] + 0.3
    run = result.run
    assert (run.status, run.epochs_done, run.task) == ("finished", 15, "auto")
    evaluation = run.evaluation or {}
    assert evaluation["baseline_name"] == "majority class"
    assert len(evaluation["test"]["confusion_matrix"]) == 3
    assert set(evaluation["importance"]) == {
        "sepal_length",
        "sepal_width",
        "petal_length",
        "petal_width",
    }
    assert result.model.ref == "iris-mlp:1" and result.model.run_id == run.id
    assert result.model.params["classes"] == ["setosa", "versicolor", "virginica"]
    names = {m.name for m in project.runs.metrics(run.id)}
    assert {"loss", "train_loss", "val_loss", "val_accuracy", "lr"} <= names
    steps = [m for m in project.runs.metrics(run.id) if m.name == "loss"]
    assert [m.step for m in steps] == list(range(1, len(steps) + 1))
    samples = project.runs.system(run.id)
    assert samples and samples[0].cpu_percent is not None and samples[0].rss_mb > 10
    assert samples[0].gpu_percent is None  # no GPU here: absent, not an error


def test_the_same_seed_gives_the_same_metrics(project: Project) -> None:
    first = project.train("iris", arch="mlp", epochs=8, seed=3)
    second = project.train("iris", arch="mlp", epochs=8, seed=3)
    assert first.metrics == second.metrics
    losses = [
        [m.value for m in project.runs.metrics(r.run.id) if m.name == "loss"]
        for r in (first, second)
    ]
    assert losses[0] == losses[1]


def test_regression_and_forecasting_report_errors_against_baselines(project: Project) -> None:
    project.import_dataset(SAMPLES / "diabetes.csv", "diabetes", target="progression")
    reg = project.train("diabetes", arch="mlp", epochs=20)
    assert reg.run.evaluation["task"] == "regression"
    assert set(reg.metrics) == {"mse", "mae", "rmse", "r2"}
    assert reg.metrics["mse"] < reg.baseline["mse"]
    assert len(reg.run.evaluation["scatter"]["true"]) == reg.run.evaluation["n_test"]
    project.import_dataset(SAMPLES / "nile.csv", "nile", kind="timeseries")
    fc = project.train("nile", arch="rnn", epochs=30, window=6)
    assert fc.run.evaluation["baseline_name"] == "persistence (last value)"
    assert fc.model.params["spec"]["cell"] == "lstm"
    assert fc.model.pipeline[0]["window"] == 6


def test_cnn_trains_on_image_folders(project: Project) -> None:
    project.import_dataset(SAMPLES / "digits", "digits")
    result = project.train("digits", arch="cnn", epochs=6, batch_size=32)
    assert result.model.signature["input_shape"] == [1, 8, 8]
    assert result.metrics["accuracy"] > 0.5
    flipped = project.train("digits", arch="cnn", epochs=1, flip=True)
    assert flipped.model.params["config"]["flip"] is True


def _no_target(project: Project, tmp_path: Path) -> dict:
    project.import_dataset(write_csv(tmp_path / "nt.csv", ["a", "b"], [[1, 2], [3, 4]]), "nt")
    return {"dataset": "nt", "arch": "mlp"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dataset": "iris", "arch": "mlp", "lr": -0.1}, "--lr -0.1: the learning rate must be"),
        ({"dataset": "iris", "arch": "mlp", "epochs": 0}, "--epochs 0: must be a whole number"),
        (
            {"dataset": "iris", "arch": "cnn"},
            "--arch cnn trains on images data, but iris:1 is tabular",
        ),
        ({"dataset": "iris", "arch": "mlp", "optimizer": "rmsprop"}, "--optimizer 'rmsprop'"),
        ({"dataset": "iris", "arch": "mlp", "dropout": 1.5}, "--dropout 1.5"),
        ({"dataset": "iris", "arch": "mlp", "target": "nope"}, "--target 'nope'"),
        (
            {"dataset": "nile", "arch": "rnn", "window": 90},
            "--window 90 with --horizon 1 is longer",
        ),
        (_no_target, "nt:1 has no target column"),
    ],
)
def test_impossible_training_is_refused_before_anything_is_written(
    project: Project, tmp_path: Path, options, message: str
) -> None:
    project.import_dataset(SAMPLES / "nile.csv", "nile", kind="timeseries")
    if callable(options):
        options = options(project, tmp_path)
    before = snapshot(project.path)
    with pytest.raises(InvalidOptionError, match=message.replace("(", r"\(")):
        project.train(options.pop("dataset"), **options)
    assert snapshot(project.path) == before


def test_a_diverging_run_fails_with_the_reason(project: Project) -> None:
    project.import_dataset(SAMPLES / "diabetes.csv", "diabetes", target="progression")
    with pytest.raises(LeptonError, match="NaN or infinite"):
        project.train(
            "diabetes",
            arch="mlp",
            epochs=30,
            lr=10.0,
            optimizer="sgd",
            grad_clip=0.0,
            patience=0,
            schedule="none",
        )
    (run,) = project.runs.list()
    assert run.status == "failed" and "NaN" in (run.error or "")
    assert project.models.list() == []


def test_aliases_notes_archive_and_delete(project: Project) -> None:
    first = project.train("iris", arch="mlp", epochs=3)
    second = project.train("iris", arch="mlp", epochs=3)
    champion = project.models.set_alias(first.model.ref, "champion")
    assert champion.aliases == ("champion",)
    assert project.models.get("iris-mlp@champion").version == 1
    assert project.models.get("iris-mlp").version == 2
    project.models.archive("iris-mlp:2")
    assert project.models.get("iris-mlp").version == 1
    project.runs.delete(second.run.id)
    with pytest.raises(NotFoundError):
        project.models.get("iris-mlp:2")
    counts = snapshot(project.path)["counts"]
    assert counts["checkpoints"] == 2 and counts["model_versions"] == 1
    project.runs.archive(first.run.id)
    assert [r.id for r in project.runs.list()] == []
    assert snapshot(project.path)["counts"]["checkpoints"] == 0
    assert project.runs.get(first.run.id).archived
    module, version = project.models.load("iris-mlp@champion")
    assert version.ref == "iris-mlp:1" and not module.training


def test_a_run_whose_job_is_cancelled_before_it_starts_becomes_resumable(project: Project) -> None:
    from lepton_desktop.core.training.config import TrainConfig

    run, job_id = project.runs.queue("iris", TrainConfig(arch="mlp", epochs=2))
    assert project.runs.get(run.id).status == "queued"
    project.cancel_job(job_id)
    cancelled = project.runs.get(run.id)
    assert cancelled.status == "interrupted" and cancelled.resumable
    assert "cancelled" in (cancelled.error or "")
    project.runs.delete(run.id)
    assert project.runs.list() == []


def test_training_in_a_script_leaves_its_process_settings_alone(project: Project) -> None:
    import signal

    import torch

    threads = torch.get_num_threads()
    handler = signal.getsignal(signal.SIGTERM)
    project.train("iris", arch="mlp", epochs=1)
    assert torch.get_num_threads() == threads
    assert signal.getsignal(signal.SIGTERM) is handler
