"""The command line end to end, on real project files, in real subprocesses (DESIGN §4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import snapshot, write_csv

REPO = Path(__file__).resolve().parents[2]


def cli(
    *args: object, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    proc = subprocess.run(
        [sys.executable, "-m", "lepton_desktop", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def assert_user_error(proc: subprocess.CompletedProcess[str], message: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert message in lines[0], lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.fixture
def data(tmp_path: Path) -> Path:
    rows = [[i * 0.1, ["a", "b", "c"][i % 3], ["yes", "no"][i % 2]] for i in range(30)]
    return write_csv(tmp_path / "data.csv", ["x", "colour", "label"], rows)


def test_new_import_info_json(tmp_path: Path, data: Path) -> None:
    project = tmp_path / "p.lepton"
    assert "created" in cli("new", project).stdout
    out = cli("import", project, data, "--name", "d", "--target", "label").stdout
    assert "imported d:1: 30 rows, 3 columns" in out
    info = json.loads(cli("info", project, "--json").stdout)
    assert set(info) >= {"datasets", "runs", "models", "studies"}
    (dataset,) = info["datasets"]
    assert {k: dataset[k] for k in ("name", "version", "kind", "rows", "columns", "target")} == {
        "name": "d",
        "version": 1,
        "kind": "tabular",
        "rows": 30,
        "columns": 3,
        "target": "label",
    }
    assert dataset["splits"] == {"train": 0, "val": 0, "test": 0}
    assert "d:1" in cli("info", project).stdout


def test_import_json_prints_exactly_one_object(tmp_path: Path, data: Path) -> None:
    project = tmp_path / "p.lepton"
    cli("new", project)
    out = cli("import", project, data, "--name", "d", "--json").stdout
    assert json.loads(out)["dataset"] == "d:1" and out.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["info", "{missing}"], "no such file"),
        (["info"], "the following arguments are required: project"),
        (["import", "{project}", "{tmp}/absent.csv", "--name", "x"], "absent.csv: no such file"),
        (
            ["import", "{project}", "{data}", "--name", "x", "--target", "nope"],
            "no target column 'nope'",
        ),
        (
            ["import", "{project}", "{ragged}", "--name", "x"],
            "ragged.csv, line 3: expected 2 fields",
        ),
        (
            ["import", "{project}", "{data}", "--name", "x", "--kind", "weird"],
            "invalid choice: 'weird'",
        ),
        (["prep", "{project}", "nope", "--dedupe"], "no dataset 'nope'"),
        (["new", "{project}"], "already exists"),
        (["info", "{junk}"], "not an SQLite database"),
    ],
)
def test_user_mistakes_are_one_line_exit_2_and_change_nothing(
    tmp_path: Path, data: Path, args: list[str], message: str
) -> None:
    project = tmp_path / "p.lepton"
    cli("new", project)
    ragged = write_csv(tmp_path / "ragged.csv", ["a", "b"], [[1, 2], [3]])
    junk = tmp_path / "junk.lepton"
    junk.write_bytes(os.urandom(1000))
    names = {
        "project": project,
        "tmp": tmp_path,
        "data": data,
        "ragged": ragged,
        "junk": junk,
        "missing": tmp_path / "missing.lepton",
    }
    before = snapshot(project)
    assert_user_error(cli(*[a.format(**names) for a in args], check=False), message)
    assert snapshot(project) == before


def test_a_bare_unknown_word_is_not_mistaken_for_a_project(tmp_path: Path) -> None:
    assert_user_error(cli(tmp_path / "nothing-here.lepton", check=False), "no such file")


def test_an_older_project_is_upgraded_with_a_note_and_a_backup(tmp_path: Path) -> None:
    old = tmp_path / "old.lepton"
    old.write_bytes((REPO / "tests" / "fixtures" / "schema_v1.lepton").read_bytes())
    proc = cli("info", old, "--json")
    assert "note: upgraded" in proc.stderr and "backup" in proc.stderr
    assert json.loads(proc.stdout)["datasets"][0]["name"] == "flowers"
    assert len(list(tmp_path.glob("old.schema1-*.bak.lepton"))) == 1
