"""The command line package's shape: no import circles, no private names shared, one
door into the job machinery, every subcommand declared once, light start-up."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

import lepton_desktop.cli
from lepton_desktop.cli import entry

PACKAGE = "lepton_desktop.cli"
REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted(Path(lepton_desktop.cli.__file__).parent.glob("*.py"))


def _imports_from(path: Path) -> list[tuple[str, str, int]]:
    """``(module, name, line)`` of every ``from lepton_desktop... import name`` in a file,
    at any depth (imports inside functions count too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        (node.module, alias.name, node.lineno)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lepton_desktop")
        for alias in node.names
    ]


def test_no_import_circles_inside_the_package() -> None:
    graph = grimp.build_graph("lepton_desktop", cache_dir=None)
    modules = {m for m in graph.modules if m == PACKAGE or m.startswith(PACKAGE + ".")}
    edges = {
        m: graph.find_modules_directly_imported_by(m) & modules - {m} for m in sorted(modules)
    }
    cycles = [
        f"{m} -> {n} -> ... -> {m}"
        for m in sorted(modules)
        for n in sorted(edges[m])
        if _reaches(edges, n, m)
    ]
    assert not cycles, cycles


def _reaches(edges: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module == goal:
            return True
        if module not in seen:
            seen.add(module)
            todo.extend(edges[module])
    return False


def test_no_private_name_is_imported_across_modules() -> None:
    private = [
        f"{path.name}:{line}: from {module} import {name}"
        for path in SOURCES
        for module, name, line in _imports_from(path)
        if name.startswith("_") and not name.endswith("__")  # __version__ is public
    ]
    assert not private, private


@pytest.mark.parametrize(
    ("name", "home"),
    [("run_job", "lepton_desktop.core.jobs"), ("JOB_FUNCTIONS", "lepton_desktop.workers")],
)
def test_the_job_machinery_is_imported_in_one_module(name: str, home: str) -> None:
    # The core is being reorganised: when these names move, one import moves with them.
    importers = {
        path.name
        for path in SOURCES
        for module, imported, _ in _imports_from(path)
        if imported == name and module.startswith(home)
    }
    assert importers == {"common.py"}


def test_every_subcommand_is_declared_once_and_listed() -> None:
    declared = [command.name for group in entry.groups() for command in group.COMMANDS]
    assert sorted(declared) == sorted(entry.COMMANDS)  # none twice, none left out
    assert list(entry.commands()) == list(entry.COMMANDS)
    parser = entry.build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    assert list(sub.choices) == list(entry.COMMANDS)  # --help lists them in this order


def test_the_console_script_entry_point_is_run() -> None:
    # run = main, then a prompt exit (tests/cli/test_start_up.py); scripts call main.
    assert lepton_desktop.cli.main is entry.main and lepton_desktop.cli.run is entry.run
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["scripts"]["lepton-desktop"] == "lepton_desktop.cli:run"


# Runs the command line in a fresh interpreter and prints, at exit, which heavy
# libraries it imported.
_PROBE = """
import atexit, sys
heavy = ("torch", "pandas", "optuna", "fastapi", "PySide6", "pyqtgraph")
atexit.register(lambda: print("HEAVY", [m for m in heavy if m in sys.modules], file=sys.stderr))
from lepton_desktop.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(
    "args",
    [["--help"], ["--version"], ["info", "{project}"], ["info", "{project}", "--json"],
     ["{missing}"]],  # the GUI form refusing a missing file: Qt is not started for that
    ids=["help", "version", "info", "info-json", "gui-missing-file"],
)  # fmt: skip
def test_start_up_imports_no_heavy_library(
    args: list[str], tmp_project: Path, tmp_path: Path
) -> None:
    names = {"project": tmp_project, "missing": tmp_path / "missing.lepton"}
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *[a.format(**names) for a in args]],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == (2 if args == ["{missing}"] else 0), proc.stderr
    assert proc.stderr.splitlines()[-1] == "HEAVY []", proc.stderr
