"""GUI fixtures: a real main window, offscreen, with throwaway settings and user data."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot

from lepton_desktop.core.project import Project
from lepton_desktop.gui.app import create_app
from lepton_desktop.gui.main_window import MainWindow
from lepton_desktop.gui.session import ProjectSession
from lepton_desktop.gui.settings import AppSettings

REPO = Path(__file__).resolve().parents[2]
IRIS = REPO / "resources" / "sample_data" / "iris.csv"
#: Generous: a worker process starts a fresh Python on a busy 2-core machine.
WORKER_TIMEOUT_MS = 60_000


@pytest.fixture(autouse=True)
def _user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The demo project and anything per-user goes to the test's own folder.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    # Poll jobs every 100 ms instead of 500 ms, so tests see progress sooner.
    monkeypatch.setattr(ProjectSession, "POLL_MS", 100)


@pytest.fixture
def settings(tmp_path: Path) -> AppSettings:
    """App settings in a throwaway INI file."""
    return AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))


@pytest.fixture
def window(qtbot: QtBot, settings: AppSettings) -> Iterator[MainWindow]:
    """The real main window, shown offscreen; its jobs stopped and project closed after."""
    create_app()
    win = MainWindow(settings)
    # Not qtbot.addWidget: that closes the window before this fixture's teardown, and a
    # window with running jobs asks before closing.
    win.show()
    qtbot.waitExposed(win)
    yield win
    session = win.session
    if session is not None and session.jobs.running_ids():
        session.jobs.stop_all()
        qtbot.waitUntil(lambda: not session.jobs.running_ids(), timeout=WORKER_TIMEOUT_MS)
    assert win.close()
    win.deleteLater()


@pytest.fixture
def open_session(qtbot: QtBot) -> Iterator[Callable[[Path], ProjectSession]]:
    """Opens a session (its own DB thread) on a project file, for one widget without the
    window; every session opened is closed after the test."""
    sessions: list[ProjectSession] = []

    def do_open(path: Path) -> ProjectSession:
        session = ProjectSession(path)
        with qtbot.waitSignal(session.opened, timeout=10_000):
            session.open()
        sessions.append(session)
        return session

    yield do_open
    for session in sessions:
        session.close()


@pytest.fixture
def open_project(qtbot: QtBot, window: MainWindow) -> Callable[[Path], None]:
    """Open a project in the window and wait until its dataset list is shown."""

    def do_open(path: Path) -> None:
        with Project.open(path) as project:
            expected = len(project.datasets())
        window.open_path(path)
        qtbot.waitUntil(
            lambda: window.session is not None and window.session.path == path.resolve()
            and window.session.is_open, timeout=10_000,
        )
        tree = window.datasets_tab.tree
        qtbot.waitUntil(lambda: tree.version_count() == expected, timeout=10_000)

    return do_open


@pytest.fixture
def iris_project(tmp_project: Path) -> Path:
    """A project holding iris (imported directly, without a worker)."""
    with Project.open(tmp_project) as project:
        project.import_dataset(IRIS, "iris", target="species")
    return tmp_project


@pytest.fixture
def make_csv() -> Callable[..., Path]:
    """Writes numeric CSV files (see :func:`write_numeric_csv`)."""
    return write_numeric_csv


def write_numeric_csv(path: Path, rows: int, columns: int = 5, seed: int = 0) -> Path:
    """A CSV of ``rows`` random rows, written fast (one block, repeated)."""
    rng = np.random.default_rng(seed)
    block_rows = min(rows, 10_000)
    block = rng.normal(size=(block_rows, columns))
    text = "\n".join(",".join(f"{v:.5f}" for v in row) for row in block) + "\n"
    header = ",".join(f"f{i}" for i in range(columns)) + "\n"
    with path.open("w", encoding="utf-8") as fh:
        fh.write(header)
        for _ in range(rows // block_rows):
            fh.write(text)
    return path
