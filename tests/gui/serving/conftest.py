"""Serving fixtures: a project with two trained model versions, trained once."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from lepton_desktop.core.project import Project
from lepton_desktop.gui.serving.poller import ServingPoller
from lepton_desktop.gui.serving.tab import ServingTab
from lepton_desktop.gui.session import ProjectSession
from tests.gui.conftest import IRIS
from tests.request_log_factory import logged_project


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


@pytest.fixture
def logged(tmp_path: Path) -> Path:
    """A project with a logged request history (tests/request_log_factory)."""
    return logged_project(tmp_path / "log.lepton")


@pytest.fixture
def logged_tab(
    qtbot: QtBot,
    logged: Path,
    open_session: Callable[[Path], ProjectSession],
    monkeypatch: pytest.MonkeyPatch,
) -> ServingTab:
    """A Serving tab, shown and polling fast, on ``logged``; each test waits for the
    part of it that it reads."""
    monkeypatch.setattr(ServingPoller, "INTERVAL_MS", 100)
    shown = ServingTab()
    qtbot.addWidget(shown)
    shown.resize(1400, 800)
    shown.show()
    shown.set_session(open_session(logged))
    return shown
