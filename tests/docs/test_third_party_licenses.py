"""The third-party licence file lists every runtime dependency, with its licence text."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
LICENSES = REPO / "resources" / "licenses" / "THIRD_PARTY_LICENSES.txt"


def _generator():
    spec = importlib.util.spec_from_file_location(
        "third_party_licenses", REPO / "packaging" / "third_party_licenses.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_runtime_dependency_is_listed_with_its_licence() -> None:
    lines = LICENSES.read_text(encoding="utf-8").splitlines()
    names = {canonicalize_name(line): i for i, line in enumerate(lines) if line.strip()}
    required = _generator().runtime_requirements()
    assert {"torch", "pyside6-essentials", "optuna", "fastapi"} <= set(required)
    missing = [name for name in required if name not in names]
    assert not missing, f"run packaging/third_party_licenses.py: {missing} are not listed"
    torch_at = names["torch"]
    assert "BSD" in lines[torch_at + 2]  # name, version, licence, home page, text
    assert len(lines) > 20 * len(required)  # each entry carries its licence's text
