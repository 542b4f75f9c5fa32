"""``train --dp-epsilon`` and ``tune --dp-epsilon``: private training from the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lepton_desktop.core.project import Project
from tests.cli.test_cli import assert_user_error, cli
from tests.helpers import snapshot

pytestmark = pytest.mark.slow  # worker code in a subprocess per command


@pytest.fixture
def project(cli_template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "p.lepton"
    shutil.copy(cli_template, path)
    return path


def test_train_dp_epsilon_json_reports_the_spent_budget(project: Path) -> None:
    out = cli(
        "train", project, "iris", "--arch", "mlp", "--epochs", "2", "--no-strong-baseline",
        "--dp-epsilon", "2.5", "--dp-delta", "1e-4", "--dp-max-grad-norm", "0.8", "--json",
    ).stdout  # fmt: skip
    spent = json.loads(out)["privacy"]
    assert 0 < spent["epsilon"] <= 2.5 and spent["target_epsilon"] == 2.5
    assert (spent["delta"], spent["max_grad_norm"], spent["accountant"]) == (1e-4, 0.8, "rdp")
    assert spent["noise_multiplier"] > 0 and spent["steps"] > 0
    text = cli(
        "train", project, "iris", "--arch", "mlp", "--epochs", "1", "--no-strong-baseline",
        "--dp-epsilon", "4",
    ).stdout  # fmt: skip
    assert "privacy:  ε = " in text and "spent of 4, δ = 1e-05, clipping C = 1" in text


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--dp-epsilon", "0"], "--dp-epsilon 0.0: must be a number greater than 0"),
        (["--dp-epsilon", "abc"], "--dp-epsilon: invalid float value: 'abc'"),
        (["--dp-epsilon", "nan"], "--dp-epsilon nan"),
        (["--dp-epsilon", "1", "--dp-delta", "0.5"], "must be below 1/n = 1/105"),
        (["--dp-epsilon", "1", "--dp-delta", "0"], "--dp-delta 0.0"),
        (["--dp-epsilon", "1", "--dp-max-grad-norm", "-1"], "--dp-max-grad-norm -1.0"),
        (["--dp-delta", "1e-6"], "--dp-delta applies to private training"),
        (
            ["--dp-epsilon", "0.01", "--epochs", "40"],
            "--dp-epsilon 0.01 cannot be met on 105 training examples over 40 epochs",
        ),
    ],
)
def test_impossible_privacy_settings_are_one_error_line_and_change_nothing(
    project: Path, options: list[str], message: str
) -> None:
    before = snapshot(project)
    proc = cli("train", project, "iris", "--arch", "mlp", *options, "--json", check=False)
    assert_user_error(proc, message)
    assert snapshot(project) == before


def test_tune_fixes_epsilon_for_every_trial(project: Path) -> None:
    before = snapshot(project)
    proc = cli(
        "tune", project, "iris", "--arch", "mlp", "--trials", "1", "--epochs", "40",
        "--dp-epsilon", "0.01", "--json", check=False,
    )  # fmt: skip
    assert_user_error(proc, "--dp-epsilon 0.01 cannot be met")
    assert snapshot(project) == before
    out = cli(
        "tune", project, "iris", "--arch", "mlp", "--trials", "1", "--epochs", "1",
        "--dp-epsilon", "5", "--json",
    ).stdout  # fmt: skip
    result = json.loads(out)
    assert result["trials"]["complete"] == 1
    with Project.open(project) as opened:  # the retrained best is private too
        model = opened.models.get(result["model"])
        assert model.params["privacy"]["target_epsilon"] == 5.0
        assert opened.tuning.get(result["study"]).options["dp_epsilon"] == 5.0
