"""Search spaces: defaults per architecture, files, validation, grids."""

from __future__ import annotations

from pathlib import Path

import pytest

from lepton_desktop.core.errors import InvalidOptionError
from lepton_desktop.core.tuning import space as spaces


@pytest.mark.parametrize("arch", ["mlp", "cnn", "rnn"])
def test_default_spaces_are_valid_and_cover_the_usual_knobs(arch: str) -> None:
    space = spaces.default_space(arch)
    assert spaces.validate_space(space, arch) == space
    assert space["lr"] == {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}
    assert {"batch_size", "dropout", "optimizer"} <= set(space)
    assert {"mlp": "width", "cnn": "channels", "rnn": "rnn_hidden"}[arch] in space


def test_json_and_toml_files_give_the_same_space(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text(
        '{"lr": {"type": "float", "low": 0.001, "high": 0.1, "log": true},'
        ' "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]}, "epochs": 3}'
    )
    (tmp_path / "s.toml").write_text(
        '[lr]\ntype = "float"\nlow = 0.001\nhigh = 0.1\nlog = true\n\n'
        '[optimizer]\ntype = "categorical"\nchoices = ["adam", "sgd"]\n'
    )
    from_json = spaces.validate_space(spaces.load_space(tmp_path / "s.json"), "mlp")
    from_toml = spaces.validate_space(spaces.load_space(tmp_path / "s.toml"), "mlp")
    assert from_json["epochs"] == {"type": "categorical", "choices": [3]}  # a fixed value
    del from_json["epochs"]
    assert from_json == from_toml


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("s.json", '{"lr": {"type": "float", "low": 1,}', "line 1"),
        ("s.toml", "[lr\ntype = 1", "--space"),
        ("s.yaml", "lr: 1", "give a .json or .toml file"),
        ("s.json", "[1, 2]", "expected a table of hyperparameters"),
    ],
)
def test_unreadable_space_files_are_named(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InvalidOptionError, match=message) as info:
        spaces.load_space(path)
    assert name in str(info.value)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({}, "the search space is empty"),
        ({"channels": {"type": "int", "low": 8, "high": 32}}, "unknown hyperparameter 'channels'"),
        ({"lr": {"type": "float", "low": 0.1, "high": 0.01}}, "'lr': low 0.1 must be below high"),
        ({"lr": {"type": "float", "low": 0.0, "high": 0.1, "log": True}}, "needs low > 0"),
        ({"lr": {"type": "float", "low": 0.1}}, "needs low and high"),
        ({"optimizer": {"type": "categorical", "choices": []}}, "choices must be a non-empty"),
        ({"optimizer": {"type": "categorical", "choices": ["adam", "rmsprop"]}}, "'rmsprop'"),
        ({"dropout": {"type": "float", "low": 0.0, "high": 1.0}}, "'dropout' = 1.0 is impossible"),
        ({"layers": {"type": "int", "low": 1.5, "high": 3}}, "whole low, high, step"),
        ({"width": {"type": "int", "low": 8, "high": 64, "step": 100}}, "step 100"),
        ({"width": {"type": "int", "low": 8, "high": 64, "log": True, "step": 2}}, "log and step"),
        ({"lr": {"type": "uniform", "low": 0.1, "high": 1}}, "type 'uniform'"),
        ({"lr": {"type": "float", "low": 0.01, "high": 0.1, "q": 2}}, "unknown keys q"),
        ({"lr": [0.1, 0.01]}, "give a table with a type"),
    ],
)
def test_bad_spaces_are_refused_naming_the_parameter(space: dict, message: str) -> None:
    with pytest.raises(InvalidOptionError, match=message):
        spaces.validate_space(space, "mlp")


def test_a_searched_option_cannot_also_be_fixed() -> None:
    with pytest.raises(InvalidOptionError, match="'epochs' is both searched and fixed"):
        spaces.validate_space(
            {"epochs": {"type": "int", "low": 2, "high": 9}}, "mlp", {"epochs": 5}
        )


def test_shorthands_become_training_options() -> None:
    options = spaces.apply_params({"arch": "mlp"}, {"layers": 3, "width": 32, "lr": 0.01})
    assert options == {"arch": "mlp", "hidden": [32, 32, 32], "lr": 0.01}
    cnn = spaces.apply_params({"arch": "cnn"}, {"blocks": 3, "channels": 8})
    assert cnn["channels"] == [8, 16, 32]


def test_grid_is_finite_and_says_how_ranges_expand() -> None:
    space = spaces.validate_space(
        {
            "layers": {"type": "int", "low": 1, "high": 3},
            "width": {"type": "int", "low": 16, "high": 256, "log": True},
            "dropout": {"type": "float", "low": 0.0, "high": 0.4, "step": 0.1},
            "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
            "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
        },
        "mlp",
    )
    grid = spaces.grid(space)
    assert grid["layers"] == [1, 2, 3]
    assert grid["width"] == [16, 32, 64, 128, 256]
    assert grid["dropout"] == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert grid["lr"][0] == 1e-4 and grid["lr"][-1] == 1e-2 and len(grid["lr"]) == 5
    assert grid["lr"][2] == pytest.approx(1e-3)
    assert spaces.grid_size(space) == 3 * 5 * 5 * 5 * 2
