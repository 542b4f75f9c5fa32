"""Refused work leaves no trace: bad names and impossible imports, byte for byte (issue 10).

Each case runs the real command line on a real project and checks one ``error:`` line,
exit status 2, and a project file whose bytes did not change (no job row inserted
and deleted, no WAL left behind).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_cli import assert_user_error, cli
from tests.conftest import SAMPLE_DATA
from tests.helpers import write_csv
from tests.small_factory import copy_of, small_project

__all__ = ["small_project"]

IRIS = SAMPLE_DATA / "iris.csv"


def _files(project: Path) -> dict[str, bytes]:
    """The project file and any companion (-wal, -shm, journal) by name."""
    return {p.name: p.read_bytes() for p in sorted(project.parent.glob(project.name + "*"))}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["import", "{p}", IRIS, "--name", "two\nlines"], "control character (U+000A)"),
        (["import", "{p}", IRIS, "--name", "evil\u202etxt"], "(U+202E)"),
        (["import", "{p}", IRIS, "--name", "   "], "dataset name must not be empty"),
        (["train", "{p}", "iris", "--arch", "mlp", "--name", "a\x1b[31m"], "(U+001B)"),
        (["models", "{p}", "--alias", "iris-mlp", "champ\n"], "alias 'champ\\n'"),
        (
            ["tune", "{p}", "iris", "--arch", "mlp", "--trials", "2", "--study", "s\n"],
            "--study 's\\n'",
        ),
        (["import", "{p}", IRIS, "--name", "x", "--target", "nope"], "no target column"),
        (["import", "{p}", "{tmp}/absent.csv", "--name", "x"], "no such file"),
        (["import", "{p}", "{ragged}", "--name", "x"], "line 3: expected 2 fields"),
        (["import", "{p}", SAMPLE_DATA / "digits", "--name", "iris"], "holds tabular data"),
        (["import", "{p}", "{tmp}/empty.csv", "--name", "x"], "the file is empty"),
        (["import", "{p}", "{wide}", "--name", "x"], "10,000 columns; a dataset holds at most"),
        # /sys refuses new files, even to root (for whom os.access says yes)
        (["export", "{p}", "iris-mlp", "--format", "torchscript", "--out", "/sys/m.pt"], "/sys"),
        (["export", "{p}", "iris-mlp", "--format", "bundle", "--out", "/proc/m.zip"], "/proc"),
        (
            ["train", "{p}", "iris", "--arch", "mlp", "--hidden", "1000000000"],
            "this MLP has 8,000,000,003 parameters: its checkpoints would take about",
        ),
        (
            ["train", "{p}", "iris", "--arch", "mlp", "--hidden", "100000", "--batch-size",
             "10000000"],
            "TB of memory, more than the",
        ),
        (
            ["tune", "{p}", "iris", "--arch", "mlp", "--trials", "2", "--space", "{space}"],
            "search space: at its upper bounds, this MLP",
        ),
        (["import", "{p}", "{huge}", "--name", "x"], "line 3: row 2 is 50.0 MB long"),
    ],
)
def test_refused_names_and_imports_leave_the_file_byte_for_byte(
    small_project: Path, tmp_path: Path, args: list[object], message: str
) -> None:
    project = copy_of(small_project, tmp_path)
    ragged = write_csv(tmp_path / "ragged.csv", ["a", "b"], [[1, 2], [3]])
    (tmp_path / "empty.csv").write_bytes(b"")
    wide = write_csv(tmp_path / "wide.csv", [f"c{i}" for i in range(10_000)], [[1] * 10_000])
    huge = tmp_path / "huge.csv"
    huge.write_text("a,b\n1,x\n2," + "y" * (50 << 20) + "\n")
    space = tmp_path / "space.json"
    space.write_text('{"width": {"type": "int", "low": 16, "high": 2000000000}}')
    names = {
        "p": project, "tmp": tmp_path, "ragged": ragged, "wide": wide, "huge": huge,
        "space": space,
    }
    before = _files(project)
    argv = [a.format(**names) if isinstance(a, str) else a for a in args]
    assert_user_error(cli(*argv, check=False), message)
    assert _files(project) == before


def test_import_reports_non_finite_values_as_a_warning(
    small_project: Path, tmp_path: Path
) -> None:
    project = copy_of(small_project, tmp_path)
    source = write_csv(tmp_path / "inf.csv", ["x", "y"], [[1, 0], ["inf", 1], ["1e309", 0]])
    proc = cli("import", project, source, "--name", "inf")
    assert proc.stdout.strip() == "imported inf:1: 3 rows, 2 columns"
    assert proc.stderr.strip() == (
        "warning: 2 value(s) that are not finite numbers (inf, -inf, or too large, like 1e309) "
        "were treated as missing: x (2)"
    )


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (["yes"] * 12, "target 'y' of d:1 holds the same value in all 12 rows"),
        ([f"id{i}" for i in range(12)], "holds a different value in every row (12 of 12)"),
    ],
)
def test_training_on_a_target_with_nothing_to_learn_is_refused(
    small_project: Path, tmp_path: Path, labels: list[str], message: str
) -> None:
    project = copy_of(small_project, tmp_path)
    source = write_csv(tmp_path / "d.csv", ["x", "y"], [[i, v] for i, v in enumerate(labels)])
    cli("import", project, source, "--name", "d", "--target", "y")
    before = _files(project)
    assert_user_error(cli("train", project, "d", "--arch", "mlp", check=False), message)
    assert _files(project) == before
