"""One small trained project, built once per session, for tests that damage or probe it.

``iris:1`` (imported), ``iris:2`` (split 70/15/15) and the model ``iris-mlp:1`` (one
epoch, 8 hidden units: a checkpoint of a few KB, so the file has few pages). Tests copy
it before use (:func:`copy_of`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_DATA


@pytest.fixture(scope="session")
def small_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's small trained project (do not change it: copy it)."""
    from lepton_desktop.core.datasets.prep import PrepOptions
    from lepton_desktop.core.project import Project

    path = tmp_path_factory.mktemp("small") / "small.lepton"
    with Project.create(path) as project:
        project.import_dataset(SAMPLE_DATA / "iris.csv", "iris", target="species")
        project.prep("iris", PrepOptions(split=(0.7, 0.15, 0.15)))
        project.train("iris", arch="mlp", epochs=1, hidden=(8,))
    return path


def copy_of(source: Path, directory: Path, name: str = "p.lepton") -> Path:
    """A private copy of ``source`` (its WAL is checkpointed: one file)."""
    target = directory / name
    shutil.copyfile(source, target)
    return target
