"""One app edits a project at a time: the advisory lock between real processes, and the
read-only view a second app gets (every write refused, the file left as it was)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lepton_desktop.core.project import Project
from lepton_desktop.core.system import project_lock
from lepton_desktop.core.system.project_lock import ProjectLock, lock_path
from tests.helpers import snapshot

#: Holds the lock of argv[1] until killed; says "held" (or "busy") first.
HOLDER = """
import sys, time
from pathlib import Path
from lepton_desktop.core.system.project_lock import ProjectLock
lock = ProjectLock.acquire(Path(sys.argv[1]))
print("held" if lock else "busy", flush=True)
time.sleep(120)
"""


def _holder(project: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(project)], stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert proc.stdout is not None
    return proc


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait(timeout=30)


def test_a_second_process_cannot_take_the_lock_and_learns_who_has_it(tmp_project: Path) -> None:
    lock = ProjectLock.acquire(tmp_project)
    assert lock is not None and lock.held
    other = _holder(tmp_project)
    try:
        assert other.stdout.readline().strip() == "busy"
    finally:
        _stop(other)
    assert project_lock.holder(tmp_project).startswith(f"process {os.getpid()} on ")
    lock.release()
    assert not lock_path(tmp_project).exists()  # a clean release leaves nothing beside it
    again = _holder(tmp_project)
    try:
        assert again.stdout.readline().strip() == "held"
        assert ProjectLock.acquire(tmp_project) is None
        assert project_lock.holder(tmp_project).startswith(f"process {again.pid} on ")
    finally:
        _stop(again)


def test_the_lock_of_a_killed_holder_is_free_at_once(tmp_project: Path) -> None:
    holder = _holder(tmp_project)
    assert holder.stdout.readline().strip() == "held"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    assert lock_path(tmp_project).exists()  # left behind, but nobody holds it
    lock = ProjectLock.acquire(tmp_project)
    assert lock is not None
    lock.release()


def test_a_read_only_project_refuses_every_write_and_stays_as_it_was(tmp_project: Path) -> None:
    before = snapshot(tmp_project)
    with Project.open(tmp_project, read_only=True) as project:
        assert project.datasets() == []  # reading works
        with pytest.raises(Exception, match="readonly"):
            project.create_job("import", {"source": "x.csv", "name": "x"})
    assert snapshot(tmp_project) == before
