"""The README's architecture diagram is drawn from the imports as they are today."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _architecture_module():
    spec = importlib.util.spec_from_file_location(
        "architecture", REPO / "packaging" / "architecture.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_diagram_matches_the_imports():
    architecture = _architecture_module()
    committed = (REPO / "resources" / "architecture" / "architecture.dot").read_text("utf-8")
    assert architecture.dot_source() == committed, (
        "the import structure changed: run `.venv/bin/python packaging/architecture.py` "
        "and commit resources/architecture/"
    )


def test_diagram_shows_the_layers_in_order():
    """The facade sits above core's features and the store at the bottom, not the reverse."""
    edges = _architecture_module().node_edges()
    assert ("core.project", "core.training") in edges or ("core.project", "core.tuning") in edges
    assert not any(a == "core.store" and b != "core.base" for a, b in edges)
    assert not any(a.startswith("core") and not b.startswith("core") for a, b in edges)
    assert not any(a == "workers" and b.startswith("gui") for a, b in edges)
