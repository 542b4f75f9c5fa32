"""Core tests must run headless: they fail if anything here imports Qt."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _no_qt() -> Iterator[None]:
    yield
    leaked = sorted(m for m in ("PySide6", "pyqtgraph", "lepton_desktop.gui") if m in sys.modules)
    assert not leaked, f"core code imported Qt: {leaked}"
