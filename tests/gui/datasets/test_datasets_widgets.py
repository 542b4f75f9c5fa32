"""Datasets widgets on their own, on a real project: the tree of versions, and one
version's rows and columns."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from lepton_desktop.core.datasets.prep import PrepOptions
from lepton_desktop.core.project import Project
from lepton_desktop.gui.datasets.tree import DatasetTree
from lepton_desktop.gui.datasets.view import DatasetView
from lepton_desktop.gui.session import ProjectSession

pytestmark = pytest.mark.gui


@pytest.fixture
def prepared(iris_project: Path) -> Path:
    """iris:1 as imported, and iris:2 prepared from it (scaled)."""
    with Project.open(iris_project) as project:
        project.prep("iris", PrepOptions(scale="standard"))
    return iris_project


def test_tree_lists_versions_selects_the_newest_and_keeps_a_selection(
    qtbot: QtBot, prepared: Path
) -> None:
    with Project.open(prepared) as project:
        versions = project.datasets()
    tree = DatasetTree()
    qtbot.addWidget(tree)
    with qtbot.waitSignal(tree.versionSelected, timeout=1000) as blocker:
        tree.set_versions(versions)
    assert tree.version_count() == 2
    assert blocker.args[0].ref == "iris:2"  # a dataset's newest version first
    child = tree.topLevelItem(0).child(1)
    assert "iris:1" in child.toolTip(0)  # its lineage names the version it came from

    first = next(v for v in versions if v.ref == "iris:1")
    tree.set_versions(versions, select_id=first.id)
    assert tree.selected_version() == first
    tree.set_versions(versions)  # a refresh keeps the selection
    assert tree.selected_version() == first


def test_view_reads_a_versions_rows_and_column_stats(
    qtbot: QtBot, iris_project: Path, open_session: Callable[[Path], ProjectSession]
) -> None:
    session = open_session(iris_project)
    with Project.open(iris_project) as project:
        (version,) = project.datasets()
    view = DatasetView()
    qtbot.addWidget(view)
    view.set_version(session, version)
    qtbot.waitUntil(lambda: view.preview.is_loaded(0), timeout=10_000)
    assert view.preview.rowCount() == 150
    assert "iris" in view.summary.text()

    view.tabs.setCurrentWidget(view.columns_panel)  # a panel reads only once shown
    panel = view.columns_panel
    qtbot.waitUntil(lambda: panel.histogram is not None, timeout=10_000)
    assert panel.model.rowCount() == len(version.columns)
    assert panel.chart.n_bars == 3  # the target, species: three classes
