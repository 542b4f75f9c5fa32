"""The demo project: built from the sample data, atomically."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lepton_desktop.core.demo import create_demo
from lepton_desktop.core.errors import (
    CancelledError,
    DataImportError,
    InvalidOptionError,
    ProjectExistsError,
)
from lepton_desktop.core.project import Project
from tests.conftest import SAMPLE_DATA


class Recorder:
    def __init__(self, cancel_at: str | None = None) -> None:
        self.messages: list[str] = []
        self.cancel_at = cancel_at

    def update(self, done: int, total: int | None, message: str = "") -> None:
        self.messages.append(message)
        if message == self.cancel_at:
            raise CancelledError()


def test_demo_holds_every_kind_of_dataset(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "demo.lepton"
    recorder = Recorder()
    create_demo(path, recorder)
    assert sorted(p.name for p in path.parent.iterdir()) == ["demo.lepton"]
    assert recorder.messages[-1] == "done"
    with Project.open(path) as project:
        assert project.integrity_ok()
        found = {v.ref: (v.kind, v.target, v.n_rows, v.splits) for v in project.datasets()}
        assert found == {
            "iris:1": ("tabular", "species", 150, None),
            "iris:2": ("tabular", "species", 149, {"train": 104, "val": 24, "test": 21}),
            "digits:1": ("images", "label", 300, None),
            "digits:2": ("images", "label", 300, {"train": 210, "val": 50, "test": 40}),
            "nile:1": ("timeseries", "volume", 100, None),
            "diabetes:1": ("tabular", "progression", 442, None),
        }
        iris = project.dataset("iris:2")
        assert [op["op"] for op in iris.operations] == ["dedupe", "split", "fill", "scale"]
        assert iris.operations[-1]["method"] == "standard"
        assert project.dataset("nile").time_column == "year"


def test_an_existing_file_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "demo.lepton"
    path.write_bytes(b"my precious notes")
    with pytest.raises(ProjectExistsError, match="already exists"):
        create_demo(path)
    assert path.read_bytes() == b"my precious notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.lepton"]


def test_a_failed_build_leaves_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(SAMPLE_DATA, data)
    broken = data / "digits" / "7" / "0007.png"
    broken.write_bytes(broken.read_bytes()[:30])
    out = tmp_path / "out"
    with pytest.raises(DataImportError, match=f"{broken}: not a readable image"):
        create_demo(out / "demo.lepton", sample_data=data)
    assert list(out.iterdir()) == []


def test_a_cancelled_build_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(CancelledError):
        create_demo(tmp_path / "demo.lepton", Recorder(cancel_at="nile"))
    assert list(tmp_path.iterdir()) == []


def test_command_line_demo(tmp_path: Path, cli_env: dict[str, str], python: str) -> None:
    path = tmp_path / "d.lepton"
    argv = [python, "-m", "lepton_desktop", "demo", str(path)]
    done = subprocess.run(argv, env=cli_env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"created {path}"
    again = subprocess.run(argv, env=cli_env, capture_output=True, text=True, check=False)
    assert again.returncode == 2
    assert "already exists" in again.stderr


def test_a_folder_that_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(InvalidOptionError, match="cannot create the folder"):
        create_demo(blocker / "sub" / "demo.lepton")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_a_killed_build_is_cleaned_up_by_the_next(tmp_path: Path) -> None:
    stale = tmp_path / ".demo.lepton.0badf00d.partial"
    stale.write_bytes(b"half a project")
    Path(str(stale) + "-wal").write_bytes(b"")
    os.utime(stale, (0, 0))
    running = tmp_path / ".demo.lepton.12345678.partial"  # a build still going on
    running.write_bytes(b"being built")
    create_demo(tmp_path / "demo.lepton")
    assert sorted(p.name for p in tmp_path.iterdir()) == [running.name, "demo.lepton"]
