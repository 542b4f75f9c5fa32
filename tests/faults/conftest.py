"""The fault suite's template project and data, built once per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import SAMPLE_DATA
from tests.faults.scenarios import BIG_ROWS


@pytest.fixture(scope="session")
def fault_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``big.csv``: BIG_ROWS rows, eight numbers and a label."""
    folder = tmp_path_factory.mktemp("fault-data")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(BIG_ROWS, 8)), columns=[f"f{i}" for i in range(8)])
    frame["label"] = rng.integers(0, 3, BIG_ROWS)
    frame.to_csv(folder / "big.csv", index=False, float_format="%.6f")
    return folder


@pytest.fixture(scope="session")
def fault_template(tmp_path_factory: pytest.TempPathFactory, fault_data: Path) -> Path:
    """``iris:1``, ``iris:2`` (scaled, split), ``big:1`` and a trained ``iris-mlp``."""
    from lepton_desktop.core.datasets.prep import PrepOptions
    from lepton_desktop.core.project import Project

    path = tmp_path_factory.mktemp("fault-template") / "template.lepton"
    with Project.create(path) as project:
        project.import_dataset(SAMPLE_DATA / "iris.csv", "iris", target="species")
        options = PrepOptions.from_dict({"scale": "standard", "split": [0.7, 0.15, 0.15]})
        project.prep("iris", options)
        project.import_dataset(fault_data / "big.csv", "big", target="label")
        project.train("iris:2", arch="mlp", epochs=3)
    return path


@pytest.fixture
def fault_project(fault_template: Path, tmp_path: Path) -> Path:
    """A private copy of the template project."""
    target = tmp_path / "faults.lepton"
    shutil.copy(fault_template, target)
    return target


@pytest.fixture
def fault_env(tmp_path: Path) -> dict[str, str]:
    """The commands' environment: workers get a private data folder of their own."""
    return dict(os.environ, XDG_DATA_HOME=str(tmp_path / "xdg"))
