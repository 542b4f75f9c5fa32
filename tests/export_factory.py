"""One trained project for the export tests (core, CLI, worker), built once per session.

Import the fixture into a test module (``from tests.export_factory import
export_project``); tests that might change the file copy it first.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SAMPLE_DATA


@pytest.fixture(scope="session")
def export_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """iris:1 (MLP, @champion), iris:2 (another seed), nile:1 (LSTM), digits:1 (CNN)."""
    from lepton_desktop.core.project import Project

    path = tmp_path_factory.mktemp("export") / "trained.lepton"
    with Project.create(path) as project:
        project.import_dataset(SAMPLE_DATA / "iris.csv", "iris", target="species")
        project.train("iris", arch="mlp", epochs=8, model_name="iris")
        project.train("iris", arch="mlp", epochs=2, seed=1, hidden=(16,), model_name="iris")
        project.models.set_alias("iris:1", "champion")
        project.import_dataset(SAMPLE_DATA / "nile.csv", "nile", kind="timeseries")
        project.train("nile", arch="rnn", epochs=4, window=8, model_name="nile")
        project.import_dataset(SAMPLE_DATA / "digits", "digits")
        project.train("digits", arch="cnn", epochs=1, channels=(8, 16), model_name="digits")
    return path


def csv_rows(name: str) -> list[dict[str, Any]]:
    """The rows of a sample CSV file as raw records (text values, as a client sends)."""
    with open(SAMPLE_DATA / name, newline="") as handle:
        return list(csv.DictReader(handle))
