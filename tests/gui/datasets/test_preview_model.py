"""The preview model reads a large version a page at a time, never whole."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView
from pytestqt.qtbot import QtBot

from lepton_desktop.core.project import Project
from lepton_desktop.gui.datasets.preview_model import PAGE_ROWS, PLACEHOLDER
from lepton_desktop.gui.main_window import MainWindow

pytestmark = pytest.mark.gui
ROWS = 100_000


@pytest.fixture
def big_project(tmp_project: Path, tmp_path: Path, make_csv: Callable[..., Path]) -> Path:
    source = make_csv(tmp_path / "wide.csv", rows=ROWS, columns=4)
    with Project.open(tmp_project) as project:
        project.import_dataset(source, "wide")
    return tmp_project


def test_pages_are_fetched_lazily_on_a_100k_row_dataset(
    qtbot: QtBot, window: MainWindow, big_project: Path, open_project: Callable[[Path], None]
) -> None:
    open_project(big_project)
    view = window.datasets_tab.view
    model, table = view.preview, view.table
    requested: list[int] = []
    qtbot.waitUntil(lambda: model.version is not None and model.is_loaded(0), timeout=10_000)
    model.pageRequested.connect(requested.append)
    assert model.rowCount() == ROWS  # the view knows every row exists...
    first = model.pages_requested
    assert first <= 2  # ...but only what is on screen was read

    target = 60_000
    with Project.open(big_project) as project:
        expected = project.rows(project.dataset("wide"), target, 1)[0]
    table.scrollTo(model.index(target, 0), QAbstractItemView.ScrollHint.PositionAtTop)
    qtbot.waitUntil(lambda: model.is_loaded(target), timeout=10_000)
    assert model.data(model.index(target, 1)) == f"{expected[1]:.6g}"
    assert requested and all(abs(p - target // PAGE_ROWS) <= 1 for p in requested)
    assert model.pages_requested * PAGE_ROWS < ROWS // 50  # far from the whole table
    assert model.headerData(target, Qt.Orientation.Vertical) == f"{target + 1:,}"


def test_a_row_not_yet_fetched_shows_a_placeholder_until_its_page_arrives(
    qtbot: QtBot, window: MainWindow, big_project: Path, open_project: Callable[[Path], None]
) -> None:
    open_project(big_project)
    model = window.datasets_tab.view.preview
    qtbot.waitUntil(lambda: model.version is not None, timeout=10_000)
    row = ROWS - 1
    with qtbot.waitSignal(model.dataChanged, timeout=10_000):
        assert model.data(model.index(row, 0)) == PLACEHOLDER
    assert model.data(model.index(row, 0)) != PLACEHOLDER
    assert model.is_loaded(row)


def test_a_hidden_rows_table_reads_no_page_to_fit_its_columns(
    qtbot: QtBot, window: MainWindow, big_project: Path, open_project: Callable[[Path], None]
) -> None:
    # Qt measures every row of a hidden table (it has no rows on screen): on 100,000
    # rows that froze the window for seconds when a version loaded behind another tab.
    open_project(big_project)
    view = window.datasets_tab.view
    model = view.preview
    qtbot.waitUntil(lambda: model.version is not None and model.is_loaded(0), timeout=10_000)
    version, session = view.version, window.session
    window.tabs.setCurrentWidget(window.serving_tab)
    view.set_version(session, None)
    view.set_version(session, version)  # loads again, hidden: its first page, its fit
    qtbot.waitUntil(lambda: model.is_loaded(0), timeout=10_000)
    qtbot.wait(300)  # the fit runs in a later turn of the event loop
    assert model.pages_requested <= 2
    header = view.table.horizontalHeader()
    default = header.defaultSectionSize()
    assert all(header.sectionSize(i) == default for i in range(header.count()))
    window.tabs.setCurrentWidget(window.datasets_tab)  # shown: now it fits
    qtbot.waitUntil(lambda: any(header.sectionSize(i) != default for i in range(header.count())),
                    timeout=5_000)  # fmt: skip
    assert model.pages_requested <= 2
