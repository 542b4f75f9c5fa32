"""Sizes are bounded before anything is allocated (issue 10, defect 5).

A model is sized from its spec by arithmetic (:func:`footprint`), checked against the
parameter count torch gives the built model, and work that would not fit this
machine's memory (or whose checkpoints would not fit the project file) is refused
before a run, a study or a bundle's model exists.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from lepton_desktop.core.errors import InvalidOptionError
from lepton_desktop.core.project import Project
from lepton_desktop.core.system.memory import SAFETY_FACTOR, available_bytes, format_bytes
from lepton_desktop.core.training.config import TrainConfig
from lepton_desktop.core.training.models import build, footprint, parameter_count
from lepton_desktop.core.tuning import space as spaces
from tests.conftest import SAMPLE_DATA
from tests.helpers import snapshot


def _specs() -> list[dict[str, Any]]:
    specs: list[dict[str, Any]] = []
    for hidden, norm in itertools.product([[8], [16, 4], [3, 5, 7]], [False, True]):
        specs.append({"arch": "mlp", "input_shape": [5], "n_outputs": 3, "dropout": 0.1,
                      "hidden": hidden, "activation": "relu", "batch_norm": norm})
    for channels, kernel, shape in itertools.product(
        [[4], [4, 8], [2, 3, 5]], [3, 5], [[1, 8, 8], [3, 10, 6], [1, 3, 3], [3, 28, 28]]
    ):
        specs.append({"arch": "cnn", "input_shape": shape, "n_outputs": 10, "dropout": 0.0,
                      "channels": channels, "kernel": kernel})
    for cell, layers, both in itertools.product(["lstm", "gru"], [1, 2], [False, True]):
        specs.append({"arch": "rnn", "input_shape": [12, 1], "n_outputs": 1, "dropout": 0.1,
                      "cell": cell, "layers": layers, "hidden": 16, "bidirectional": both,
                      "anchor": "last"})
    return specs


@pytest.mark.parametrize("spec", _specs(), ids=lambda s: f"{s['arch']}-{json.dumps(s)[:60]}")
def test_the_footprint_counts_exactly_the_parameters_torch_allocates(
    spec: dict[str, Any],
) -> None:
    assert footprint(spec).parameters == parameter_count(build(spec))


@pytest.fixture
def project(tmp_project: Path):
    with Project.open(tmp_project) as p:
        p.import_dataset(SAMPLE_DATA / "iris.csv", "iris", target="species")
        yield p


def test_a_billion_wide_layer_is_refused_before_a_run_exists(project: Project) -> None:
    # The issue's `train --hidden 1000000000` grew to 24 GB and was killed.
    before = snapshot(project.path)
    with pytest.raises(InvalidOptionError, match=r"8,000,000,003 parameters: its checkpoints"):
        project.runs.queue("iris", TrainConfig(arch="mlp", hidden=(1_000_000_000,)))
    assert snapshot(project.path) == before


def test_training_larger_than_memory_is_refused_naming_size_and_limit(project: Project) -> None:
    # Small weights, but a batch whose activations no machine holds (about 30 TB).
    config = TrainConfig(arch="mlp", hidden=(100_000,), batch_size=10_000_000)
    before = snapshot(project.path)
    with pytest.raises(InvalidOptionError) as caught:
        project.runs.queue("iris", config)
    message = str(caught.value)
    assert message.startswith("training this MLP (800,003 parameters, batches of 10,000,000)")
    assert " TB of memory, more than the " in message
    assert f"({SAFETY_FACTOR:.0%} of the " in message and "use smaller --hidden" in message
    assert snapshot(project.path) == before


def test_a_search_space_is_refused_at_its_upper_bounds(project: Project) -> None:
    space = {"width": {"type": "int", "low": 16, "high": 100_000_000}, "layers": 3}
    assert spaces.largest_params(spaces.validate_space(space, "mlp"))["width"] == 100_000_000
    before = snapshot(project.path)
    with pytest.raises(InvalidOptionError, match="search space: at its upper bounds, this MLP"):
        project.tuning.create("iris", "mlp", space=space, n_trials=3)
    assert snapshot(project.path) == before


def test_the_largest_point_of_a_space_takes_every_upper_bound() -> None:
    space = spaces.validate_space(
        {
            "rnn_hidden": {"type": "int", "low": 8, "high": 64},
            "batch_size": {"type": "categorical", "choices": [16, 128, 32]},
            "cell": {"type": "categorical", "choices": ["gru", "lstm"]},
            "bidirectional": {"type": "categorical", "choices": [False, True]},
            "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
        },
        "rnn",
    )
    assert spaces.largest_params(space) == {
        "rnn_hidden": 64, "batch_size": 128, "cell": "lstm", "bidirectional": True,
        "optimizer": "adam",
    }


def test_memory_is_reported_in_readable_units() -> None:
    assert [format_bytes(n) for n in (512, 3 << 10, 5 << 20, int(1.5 * (1 << 30)))] == [
        "512 B", "3 KB", "5.0 MB", "1.5 GB"]
    assert available_bytes() > 0
