"""``train`` and ``models`` on the command line, on a real project file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cli.test_cli import assert_user_error, cli
from tests.helpers import snapshot


@pytest.fixture
def project(cli_template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "p.lepton"
    shutil.copy(cli_template, path)
    return path


def test_train_json_then_models_and_info(project: Path) -> None:
    out = cli(
        "train", project, "iris", "--arch", "mlp", "--epochs", "5", "--seed", "2", "--json"
    ).stdout
    result = json.loads(out)
    assert {"run_id", "model", "metrics"} <= set(result) and result["model"] == "iris-mlp:1"
    assert set(result["metrics"]) >= {"accuracy", "precision", "recall", "f1"}
    cli("models", project, "--alias", "iris-mlp:1", "champion")
    models = json.loads(cli("models", project, "--json").stdout)["models"]
    assert models[0]["aliases"] == ["champion"] and models[0]["run_id"] == result["run_id"]
    info = json.loads(cli("info", project, "--json").stdout)
    assert info["runs"][0] == {
        "id": result["run_id"],
        "status": "finished",
        "dataset": "iris:1",
        "arch": "mlp",
        "task": "auto",
        "best_value": info["runs"][0]["best_value"],
        "strong_baseline": {
            "name": result["strong_baseline"]["name"],
            "metric": "accuracy",
            "gain": pytest.approx(
                result["metrics"]["accuracy"] - result["strong_baseline"]["metrics"]["accuracy"]
            ),
        },
    }
    assert info["models"][0]["model"] == "iris-mlp:1"


def test_train_json_has_the_strong_baseline_and_skipping_it_works(project: Path) -> None:
    result = json.loads(cli("train", project, "iris", "--arch", "mlp", "--epochs", "2",
                            "--json").stdout)  # fmt: skip
    strong = result["strong_baseline"]
    assert strong["name"] in ("LogisticRegression", "HistGradientBoosting")
    assert set(strong["metrics"]) == set(result["metrics"])
    assert 0 < strong["fit_seconds"] < 60
    text = cli("train", project, "iris", "--arch", "mlp", "--epochs", "1").stdout
    assert "  strong:   accuracy " in text
    if "beats this network on the test split: accuracy " not in text:
        assert text.count("\n") == 4  # the network won: no verdict line
    skipped = json.loads(cli("train", project, "iris", "--arch", "mlp", "--epochs", "1",
                             "--no-strong-baseline", "--json").stdout)  # fmt: skip
    assert skipped["strong_baseline"] is None
    runs = {r["id"]: r for r in json.loads(cli("info", project, "--json").stdout)["runs"]}
    assert runs[skipped["run_id"]]["strong_baseline"] is None
    assert runs[result["run_id"]]["strong_baseline"]["name"] == strong["name"]


def test_tuning_refuses_no_strong_baseline(project: Path) -> None:
    before = snapshot(project)
    proc = cli("tune", project, "iris", "--arch", "mlp", "--trials", "2",
               "--no-strong-baseline", check=False)  # fmt: skip
    assert_user_error(proc, "unrecognized arguments: --no-strong-baseline")
    assert snapshot(project) == before


def test_forecast_with_window_and_horizon(project: Path) -> None:
    result = json.loads(
        cli(
            "train",
            project,
            "nile",
            "--arch",
            "rnn",
            "--window",
            "5",
            "--horizon",
            "2",
            "--epochs",
            "5",
            "--json",
        ).stdout
    )
    assert (
        set(result["metrics"]) == {"mse", "mae", "rmse", "r2"} and result["task"] == "forecasting"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["iris", "--arch", "mlp", "--lr", "-1"], "--lr -1.0: the learning rate must be"),
        (["iris", "--arch", "mlp", "--epochs", "0"], "--epochs 0"),
        (["iris", "--arch", "cnn"], "--arch cnn trains on images data"),
        (["nile", "--arch", "rnn", "--window", "500"], "--window 500"),
        (["iris"], "give DATASET and --arch"),
        (["--resume", "99"], "no run 99"),
        (["--resume", "1", "--no-strong-baseline"], "--no-strong-baseline applies to a new run"),
    ],
)
def test_training_mistakes_are_refused_before_any_work(project: Path, args, message) -> None:
    before = snapshot(project)
    assert_user_error(cli("train", project, *args, check=False), message)
    assert snapshot(project) == before
