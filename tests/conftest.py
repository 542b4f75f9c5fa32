"""Shared fixtures. Qt runs offscreen; every test gets its own copy of a project.

Tests outside ``tests/gui`` must run headless: such a test fails if it made Qt get
imported. (When GUI tests ran earlier in the same process Qt is already loaded; the
check then falls to ``tests/core/project/test_headless.py``, which imports every non-GUI module
in a fresh interpreter.)
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before any QApplication exists: without a display, Qt would abort the run.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DATA = REPO / "resources" / "sample_data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
GUI_TESTS = Path(__file__).resolve().parent / "gui"
_QT = ("PySide6", "pyqtgraph", "lepton_desktop.gui")


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--long``: the fault suite's long run (at least 200 kills, then a tally)."""
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="run the long fault suite: >= 200 kills of real commands, with a tally",
    )


@pytest.fixture(autouse=True)
def _no_qt(request: pytest.FixtureRequest) -> Iterator[None]:
    if GUI_TESTS in Path(str(request.node.path)).parents:
        yield
        return
    before = {m for m in _QT if m in sys.modules}
    yield
    leaked = sorted(m for m in _QT if m in sys.modules and m not in before)
    assert not leaked, f"code outside the GUI imported Qt: {leaked}"


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


@pytest.fixture
def forgotten_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No project key held by this process before or after the test (keys a test holds
    also go into os.environ for child processes: never into the next test), and no
    passphrase in the environment."""
    from lepton_desktop.core.store import keys

    monkeypatch.delenv(keys.KEYS_ENV, raising=False)
    monkeypatch.delenv("LEPTON_PASSPHRASE", raising=False)
    saved = dict(keys._KEYS)
    keys._KEYS.clear()
    yield
    keys._KEYS.clear()
    keys._KEYS.update(saved)
