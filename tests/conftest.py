"""Shared fixtures. Qt runs offscreen; every test gets its own copy of a project."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

# Before any QApplication exists: without a display, Qt would abort the run.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DATA = REPO / "resources" / "sample_data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def _template_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lepton_desktop.core.project import Project

    path = tmp_path_factory.mktemp("template") / "template.lepton"
    Project.create(path).close()
    return path


@pytest.fixture
def tmp_project(_template_project: Path, tmp_path: Path) -> Path:
    """A fresh, empty project file (copied from one migrated template, as Anki does)."""
    path = tmp_path / "project.lepton"
    shutil.copy(_template_project, path)
    return path


@pytest.fixture
def cli_env() -> dict[str, str]:
    """Environment for running ``python -m lepton_desktop`` in a subprocess."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture
def python() -> str:
    """The interpreter running the tests (and so the workers)."""
    return sys.executable
