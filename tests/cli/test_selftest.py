"""``selftest`` and ``--version``: the installation checks itself, headless.

The self-test runs for real (a worker process, a tuning study, two servers on
127.0.0.1 and their HTTP answers); a worker killed on purpose shows how a failure
is reported: the step named, exit status 1, nothing after it run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lepton_desktop.cli.selftest import STEPS
from lepton_desktop.core import faults
from tests.cli.test_cli import REPO, assert_user_error, cli

pytestmark = pytest.mark.slow


def _selftest(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = dict(os.environ, PYTHONPATH=str(REPO), XDG_DATA_HOME=str(tmp_path / "data"),
                   TMPDIR=str(tmp_path), **env)  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "lepton_desktop", "selftest", *args],
        capture_output=True, text=True, env=environ, timeout=600, check=False,
    )  # fmt: skip


def test_selftest_runs_the_whole_loop_and_times_each_step(tmp_path: Path) -> None:
    proc = _selftest(tmp_path, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result["ok"] and result["failed"] is None
    assert [s["name"] for s in result["steps"]] == [name for name, _ in STEPS]
    assert all(s["ok"] and s["seconds"] > 0 for s in result["steps"])
    details = {s["name"]: s["detail"] for s in result["steps"]}
    assert "150 rows" in details["import sample data"]
    assert "worker process" in details["train in a worker"]
    assert details["serve the project"].startswith("http://127.0.0.1:")
    assert details["serve the bundle"].endswith("the project's answers")
    assert result["seconds"] >= sum(s["seconds"] for s in result["steps"]) - 0.1
    assert not list(tmp_path.glob("lepton-selftest-*"))  # its temporary folder is gone


def test_a_failed_step_is_named_and_ends_the_test_with_status_1(tmp_path: Path) -> None:
    # The training worker SIGKILLs itself once it has claimed its job.
    proc = _selftest(tmp_path, **{faults.ENV: "after-claim:train"})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines[:-2]] == ["ok", "ok", "ok"]
    assert lines[-2].startswith("FAIL train in a worker") and "job" in lines[-2]
    assert lines[-1].startswith("selftest: failed at: train in a worker (")
    assert "Traceback" not in proc.stdout + proc.stderr


def test_version_verbose_names_every_component() -> None:
    proc = cli("--version", "--verbose", "--json")
    found = json.loads(proc.stdout)
    from lepton_desktop import __version__

    assert found["lepton-desktop"] == __version__
    for key in ("python", "os", "sqlite", "project schema", "torch", "PySide6-Essentials", "gpu"):
        assert found[key] and found[key] != "not installed", key
    import torch

    assert found["torch"] == torch.__version__
    assert cli("--version").stdout.strip() == f"lepton-desktop {__version__}"
    assert_user_error(cli("--version", "--loud", check=False), "--version takes --verbose")


def test_a_self_test_stopped_with_sigterm_leaves_no_temporary_folder(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO), XDG_DATA_HOME=str(tmp_path / "data"),
               TMPDIR=str(tmp_path))  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "lepton_desktop", "selftest"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout.readline().startswith("ok   create project")
    assert list(tmp_path.glob("lepton-selftest-*"))
    proc.terminate()  # as the Help menu's dialog does when closed mid-test
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "error: interrupted" in err
    assert not list(tmp_path.glob("lepton-selftest-*"))
