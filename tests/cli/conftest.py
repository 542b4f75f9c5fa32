"""Core tests must run headless: a test fails if it made Qt get imported.

(When GUI tests ran earlier in the same process Qt is already loaded; the check then
falls to ``test_headless.py``, which imports every core module in a fresh process.)
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

_QT = ("PySide6", "pyqtgraph", "lepton_desktop.gui")


@pytest.fixture(autouse=True)
def _no_qt() -> Iterator[None]:
    before = {m for m in _QT if m in sys.modules}
    yield
    leaked = sorted(m for m in _QT if m in sys.modules and m not in before)
    assert not leaked, f"core code imported Qt: {leaked}"
