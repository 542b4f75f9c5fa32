"""Fixtures the command-line tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_cli import cli

SAMPLES = Path(__file__).resolve().parents[2] / "resources" / "sample_data"


@pytest.fixture(scope="session")
def cli_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project made with the CLI holding iris (a table) and nile (a series); copy it."""
    path = tmp_path_factory.mktemp("cli-template") / "template.lepton"
    cli("new", path)
    cli("import", path, SAMPLES / "iris.csv", "--name", "iris", "--target", "species")
    cli("import", path, SAMPLES / "nile.csv", "--name", "nile", "--kind", "timeseries")
    return path
