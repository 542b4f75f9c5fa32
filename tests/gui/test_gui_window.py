"""The main window: start page, opening (errors, upgrade, demo), drops, theme."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDropEvent, QPalette
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from lepton_desktop.gui.app import parse_args, run
from lepton_desktop.gui.datasets.import_dialog import ImportDialog
from lepton_desktop.gui.main_window import MainWindow
from lepton_desktop.gui.settings import AppSettings
from lepton_desktop.paths import demo_project_path

pytestmark = pytest.mark.gui
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _box(window: MainWindow, name: str) -> QMessageBox | None:
    box = window.findChild(QMessageBox, name)
    return box if box is not None and box.isVisible() else None


def _files_next_to(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def test_start_page_when_no_project(
    qtbot: QtBot, settings: AppSettings, tmp_project: Path, open_project: Callable[[Path], None]
) -> None:
    settings.add_recent(tmp_project)
    from lepton_desktop.gui.main_window import MainWindow

    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    assert window.stack.currentWidget() is window.start_page
    assert window.windowTitle() == "Lepton Desktop"
    assert not window.close_action.isEnabled()
    item = window.start_page.recent.item(0)
    assert item.text().startswith(tmp_project.name)
    window.start_page.recent.itemActivated.emit(item)
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.tabs, timeout=10_000)
    assert window.session is not None and window.session.path == tmp_project.resolve()
    assert tmp_project.name in window.windowTitle()
    window.close_action.trigger()
    assert window.stack.currentWidget() is window.start_page
    assert window.session is None
    window.close()


def test_menus_and_shortcuts(window: MainWindow) -> None:
    shortcuts = {a.text(): a.shortcut().toString() for a in
                 (window.new_action, window.open_action, window.close_action, window.quit_action)}
    assert shortcuts == {"&New Project…": "Ctrl+N", "&Open Project…": "Ctrl+O",
                         "&Close Project": "Ctrl+W", "&Quit": "Ctrl+Q"}
    tabs = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert tabs[:2] == ["Datasets", "Training"] and "Serving" in tabs
    assert window.datasets_tab.import_action.shortcut().toString() == "Ctrl+I"
    assert window.datasets_tab.prep_action.shortcut().toString() == "Ctrl+P"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00garbage\xff" * 300, "not a Lepton project"),
        (None, "not a Lepton project"),  # a plain SQLite database
        (b"", "empty"),
    ],
)
def test_opening_a_bad_file_shows_an_error_and_leaves_it_untouched(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "files" / "bad.lepton"
    path.parent.mkdir()
    if content is None:
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE t (x)")
        conn.commit()
        conn.close()
    else:
        path.write_bytes(content)
    before, files = path.read_bytes(), _files_next_to(path)
    window.open_path(path)
    qtbot.waitUntil(lambda: _box(window, "errorBox") is not None, timeout=10_000)
    assert message in _box(window, "errorBox").text()
    assert path.read_bytes() == before
    assert _files_next_to(path) == files  # no -wal, no -shm, no backup
    assert window.session is None
    assert window.stack.currentWidget() is window.start_page
    assert path.resolve() not in window.settings.recent_files()


def test_a_project_from_a_newer_release_is_refused_untouched(
    qtbot: QtBot, window: MainWindow, tmp_project: Path
) -> None:
    conn = sqlite3.connect(tmp_project)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    before = tmp_project.read_bytes()
    window.open_path(tmp_project)
    qtbot.waitUntil(lambda: _box(window, "errorBox") is not None, timeout=10_000)
    assert "newer" in _box(window, "errorBox").text()
    assert tmp_project.read_bytes() == before
    assert window.session is None


def test_an_older_project_is_upgraded_only_after_asking(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    path = tmp_path / "old.lepton"
    shutil.copy(FIXTURES / "schema_v1.lepton", path)
    before = path.read_bytes()
    window.open_path(path)
    qtbot.waitUntil(lambda: _box(window, "questionBox") is not None, timeout=10_000)
    _box(window, "questionBox").button(QMessageBox.StandardButton.Cancel).click()
    assert path.read_bytes() == before
    assert window.session is None

    window.open_path(path)
    qtbot.waitUntil(lambda: _box(window, "questionBox") is not None, timeout=10_000)
    box = _box(window, "questionBox")
    next(b for b in box.buttons() if b.text() == "Upgrade").click()
    qtbot.waitUntil(lambda: window.session is not None and window.session.is_open,
                    timeout=10_000)
    assert list(tmp_path.glob("old.schema1-*.bak.lepton"))
    assert "Upgraded from schema 1" in window.statusBar().currentMessage()


def test_drop_of_a_project_file_opens_it(
    qtbot: QtBot, window: MainWindow, tmp_project: Path
) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_project))])
    event = QDropEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    qtbot.waitUntil(lambda: window.session is not None and window.session.is_open,
                    timeout=10_000)
    assert window.session.path == tmp_project.resolve()
    assert window.settings.recent_files()[0] == tmp_project.resolve()


def test_drop_of_a_data_file_opens_the_import_dialog_prefilled(
    qtbot: QtBot, window: MainWindow, tmp_project: Path, open_project: Callable[[Path], None]
) -> None:
    from tests.gui.conftest import IRIS

    open_project(tmp_project)
    assert window.drop_paths([IRIS])
    dialog = window.datasets_tab.findChild(ImportDialog)
    assert dialog is not None and dialog.isVisible()
    assert dialog.source.text() == str(IRIS)
    assert dialog.name.text() == "iris"
    qtbot.waitUntil(lambda: dialog.target.count() == 6, timeout=10_000)
    dialog.reject()


def test_theme_switch_is_exclusive_persisted_and_restyles_charts(
    qtbot: QtBot, window: MainWindow, settings: AppSettings
) -> None:
    chart = window.datasets_tab.view.columns_panel.chart
    window.theme_actions["dark"].trigger()
    app = QApplication.instance()
    assert app.palette().color(QPalette.ColorRole.Window).lightness() < 80
    assert chart.background_color.lightness() < 80
    assert settings.theme() == "dark"
    assert [n for n, a in window.theme_actions.items() if a.isChecked()] == ["dark"]
    window.theme_actions["light"].trigger()
    assert app.palette().color(QPalette.ColorRole.Window).lightness() > 180
    assert chart.background_color.lightness() > 180
    window.theme_actions["system"].trigger()
    assert settings.theme() == "system"
    assert [n for n, a in window.theme_actions.items() if a.isChecked()] == ["system"]


def test_open_demo_builds_it_in_a_process_then_opens_it(
    qtbot: QtBot, window: MainWindow
) -> None:
    assert not demo_project_path().exists()
    window.demo_action.trigger()
    qtbot.waitUntil(lambda: window.session is not None and window.session.is_open,
                    timeout=60_000)
    assert window.session.path == demo_project_path().resolve()
    tab = window.datasets_tab
    qtbot.waitUntil(lambda: {v.kind for v in tab.versions} == {"tabular", "images",
                                                               "timeseries"}, timeout=10_000)


def test_gui_arguments() -> None:
    assert parse_args([]) == (None, False)
    assert parse_args(["--demo"]) == (None, True)
    assert parse_args(["x.lepton"]) == (Path("x.lepton"), False)
    with pytest.raises(ValueError, match="usage"):
        parse_args(["--bogus"])
    assert run(["a.lepton", "b.lepton"]) == 2
