"""Serving fixtures: a project with two trained model versions, trained once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lepton_desktop.core.project import Project
from tests.gui.conftest import IRIS


@pytest.fixture(scope="package")
def _trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """iris with two model versions (trained once for the package, in-process)."""
    path = tmp_path_factory.mktemp("serving") / "trained.lepton"
    with Project.create(path) as project:
        project.import_dataset(IRIS, "iris", target="species")
        for _ in range(2):
            project.train("iris", epochs=3, seed=0)
    return path


@pytest.fixture
def trained(_trained: Path, tmp_path: Path) -> Path:
    """A copy of the trained project for one test."""
    path = tmp_path / "trained.lepton"
    shutil.copy(_trained, path)
    return path
