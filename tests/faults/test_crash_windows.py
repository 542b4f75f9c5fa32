"""Issue 10, defect 4: the crash windows of the job life cycle, each closed.

(a) killed between queue and claim: the job and its run no longer stay queued;
(b) killed right after registering: resuming does not register a second version;
(c) the tune parent killed: its trial worker stops instead of spending the budget;
(d) killed mid-trial: the next open fails the trial nobody runs any more;
(e) killed after a metric flush: the resumed run records each step once.

Each kill is real: the command line kills itself at a named point
(``LEPTON_KILL_AT``) or the test sends SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from lepton_desktop.core.jobs import job_alive
from lepton_desktop.core.processes import start_time
from lepton_desktop.core.project import Project
from lepton_desktop.core.system.lifeline import STOP_GRACE_S
from tests.faults.harness import Command, cli_env, damage, readonly, run, stuck
from tests.faults.scenarios import TRAIN_EPOCHS, check_run_metrics

pytestmark = pytest.mark.slow


def _train(project: Path) -> list[str]:
    return [
        "train",
        str(project),
        "iris:2",
        "--arch",
        "mlp",
        "--epochs",
        str(TRAIN_EPOCHS),
        "--json",
    ]


def _resume(project: Path, run_id: int, env: dict[str, str], folder: Path) -> dict:
    ended = run(["train", str(project), "--resume", str(run_id), "--json"], env, folder)
    assert ended.returncode == 0, ended.stderr
    return json.loads(ended.stdout)


def _runs(project: Path) -> list[tuple[int, str]]:
    with readonly(project) as conn:
        return conn.execute("SELECT id, status FROM runs ORDER BY id").fetchall()


def _killed(project: Path, argv: list[str], point: str, env: dict, folder: Path) -> None:
    ended = run(argv, cli_env(env, point), folder)
    assert ended.killed, f"{point} was not reached: {ended.returncode} {ended.stderr}"


# -- (a) queued, never claimed --------------------------------------------------------


def test_a_job_killed_after_queueing_is_recovered_and_its_run_resumes(
    fault_project: Path, fault_env: dict[str, str], tmp_path: Path
) -> None:
    _killed(fault_project, _train(fault_project), "after-queue", fault_env, tmp_path / "kill")
    run_id, status = _runs(fault_project)[-1]
    assert status == "queued"  # as the kill left it
    with Project.open(fault_project) as project:
        job = project.job(project.runs.get(run_id).job_id)
        assert job.status == "interrupted" and "launcher" in (job.error or "")
        assert project.runs.get(run_id).status == "interrupted"
    assert stuck(fault_project) == [] and damage(fault_project) == []
    result = _resume(fault_project, run_id, fault_env, tmp_path / "resume")
    assert result["run_id"] == run_id and result["epochs"] == TRAIN_EPOCHS


def test_a_queued_job_whose_launcher_lives_is_left_to_it(tmp_project: Path) -> None:
    with Project.open(tmp_project) as project:
        job_id = project.create_job("import", {})  # this process is its live launcher
    with Project.open(tmp_project) as project:
        assert project.job(job_id).status == "queued"
        assert project.job(job_id).owner_pid == os.getpid()


def test_a_queued_job_whose_launcher_died_is_recovered(tmp_project: Path) -> None:
    launcher = subprocess.Popen([sys.executable, "-c", "pass"])
    launcher.wait()
    started = time.time() - 5
    with Project.open(tmp_project) as project:
        job_id = project.create_job("import", {})
        project.conn.execute(  # as if that (now dead) process had queued it
            "UPDATE jobs SET owner_pid = ?, owner_started_at = ? WHERE id = ?",
            (launcher.pid, started, job_id),
        )
        assert project.recover_stale_jobs() == [job_id]
        assert project.job(job_id).status == "interrupted"


def test_a_queued_job_from_before_owners_waits_out_the_stale_period(tmp_project: Path) -> None:
    with Project.open(tmp_project) as project:
        job_id = project.create_job("import", {})
        project.conn.execute(
            "UPDATE jobs SET owner_pid = NULL, owner_started_at = NULL WHERE id = ?", (job_id,)
        )
        assert project.recover_stale_jobs(stale_after=30) == []  # just queued: give it time
        older = "UPDATE jobs SET created_at = created_at - 60 WHERE id = ?"
        project.conn.execute(older, (job_id,))
        assert project.recover_stale_jobs(stale_after=30) == [job_id]


def test_a_reused_pid_does_not_keep_a_dead_launchers_job_queued(tmp_project: Path) -> None:
    launcher = os.getppid()  # a live process other than this one
    began = start_time(launcher)
    assert began is not None
    with Project.open(tmp_project) as project:
        job_id = project.create_job("import", {})
        owner = "UPDATE jobs SET owner_pid = ?, owner_started_at = ? WHERE id = ?"
        project.conn.execute(owner, (launcher, began, job_id))
        assert project.recover_stale_jobs() == []  # that very process: alive
        # The same pid, but the process that queued it began an hour earlier: the pid
        # was handed on after that launcher died.
        project.conn.execute(owner, (launcher, began - 3600, job_id))
        assert project.recover_stale_jobs() == [job_id]


# -- (b) registered, not finished ---------------------------------------------------------


def test_a_run_killed_after_registering_registers_once_when_resumed(
    fault_project: Path, fault_env: dict[str, str], tmp_path: Path
) -> None:
    _killed(fault_project, _train(fault_project), "after-register", fault_env, tmp_path / "kill")
    run_id, _ = _runs(fault_project)[-1]
    with Project.open(fault_project) as project:
        assert project.runs.get(run_id).status == "interrupted"
        (registered,) = [v for v in project.models.list() if v.run_id == run_id]
    result = _resume(fault_project, run_id, fault_env, tmp_path / "resume")
    assert result["model"] == registered.ref
    with Project.open(fault_project) as project:
        assert [v.id for v in project.models.list() if v.run_id == run_id] == [registered.id]
        assert project.runs.get(run_id).status == "finished"


# -- (c) the tune parent killed -----------------------------------------------------------


def _trial_worker(project: Path) -> tuple[int, int] | None:
    with readonly(project) as conn:
        return conn.execute(
            "SELECT id, pid FROM jobs WHERE kind = 'trial' AND status = 'running'"
        ).fetchone()


def _trials(project: Path) -> int:
    with readonly(project) as conn:
        return conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0]


def test_killing_only_the_tune_parent_stops_its_trial_worker(
    fault_project: Path, fault_env: dict[str, str], tmp_path: Path
) -> None:
    argv = [
        "tune",
        str(fault_project),
        "iris:2",
        "--arch",
        "mlp",
        "--trials",
        "60",
        "--jobs",
        "2",
        "--epochs",
        "30",
        "--pruner",
        "none",
    ]
    parent = Command(argv, cli_env(fault_env), tmp_path / "tune")
    deadline = time.monotonic() + 240
    while (worker := _trial_worker(fault_project)) is None:
        assert time.monotonic() < deadline and parent.process.poll() is None, parent.output()
        time.sleep(0.2)
    parent.process.kill()  # the parent alone: its worker must notice
    parent.process.wait()
    at_kill = _trials(fault_project)
    job_id, pid = worker
    try:
        psutil.Process(pid).wait(timeout=20)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        pytest.fail("the orphaned trial worker went on after its parent was killed")
    assert _trials(fault_project) <= at_kill + 1  # at most the trial it was starting
    with Project.open(fault_project) as project:
        assert project.job(job_id).status in ("cancelled", "interrupted")
    assert stuck(fault_project) == []


def test_the_portable_watchdog_stops_a_child_whose_parent_dies(tmp_path: Path) -> None:
    # Not the child's real parent, so Linux's parent-death signal plays no part: only
    # the watchdog (the check every platform gets) can notice.
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    code = (
        "import sys, time; from lepton_desktop.core.system.lifeline import die_with_parent; "
        "die_with_parent(int(sys.argv[1])); time.sleep(60)"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(parent.pid)])
    time.sleep(2.0)
    assert child.poll() is None  # the parent lives: the child waits on
    parent.kill()
    parent.wait()
    assert child.wait(timeout=10) == -signal.SIGTERM


def test_a_child_started_after_its_parent_died_stops_at_once(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    code = (
        "import sys, time; from lepton_desktop.core.system.lifeline import die_with_parent; "
        "die_with_parent(int(sys.argv[1])); time.sleep(60)"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(gone.pid)])
    assert child.wait(timeout=20) == -signal.SIGTERM


def test_an_orphan_that_swallows_its_stop_is_ended_all_the_same(tmp_path: Path) -> None:
    # The real parent this time (Linux's signal arrives): the child ignores it, as a
    # stop landing in an ``except Exception`` would be, or a non-daemon thread would.
    code = (
        "import signal, subprocess, sys, time\n"
        "err = open(sys.argv[2], 'w')\n"
        "child = subprocess.Popen([sys.executable, '-c', sys.argv[1]], stderr=err)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    child_code = (
        "import signal, threading, time; "
        "from lepton_desktop.core.system.lifeline import die_with_parent; "
        "die_with_parent(); signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "threading.Thread(target=time.sleep, args=(120,)).start()"
    )
    said = tmp_path / "stderr"
    parent = subprocess.Popen(
        [sys.executable, "-c", code, child_code, str(said)], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    child = psutil.Process(int(parent.stdout.readline()))
    time.sleep(2.0)
    parent.kill()
    parent.wait()
    started = time.monotonic()
    child.wait(timeout=30)  # (not our child: its exit status is the message below)
    assert time.monotonic() - started < STOP_GRACE_S + 5
    assert "did not stop within" in said.read_text()


def test_a_job_whose_worker_died_is_not_alive_before_anyone_recovers_it(
    tmp_project: Path,
) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with Project.open(tmp_project) as project:
        job_id = project.create_job("tune", {})
        project.conn.execute(
            "UPDATE jobs SET status = 'running', pid = ?, heartbeat_at = ? WHERE id = ?",
            (dead.pid, time.time(), job_id),
        )
        assert not job_alive(project.conn, job_id)  # its row still says running
        project.conn.execute("UPDATE jobs SET pid = ? WHERE id = ?", (os.getpid(), job_id))
        assert job_alive(project.conn, job_id)


# -- (d) a trial left RUNNING ---------------------------------------------------------------


def _trial_states(project: Path, study: str) -> list[str]:
    with readonly(project) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT t.state FROM trials t JOIN studies s ON s.study_id = t.study_id "
                "WHERE s.study_name = ? ORDER BY t.number",
                (study,),
            )
        ]


def test_a_trial_killed_with_its_process_is_failed_by_the_next_open(
    fault_project: Path, fault_env: dict[str, str], tmp_path: Path
) -> None:
    argv = [
        "tune",
        str(fault_project),
        "iris:2",
        "--arch",
        "mlp",
        "--trials",
        "3",
        "--jobs",
        "1",
        "--epochs",
        "4",
        "--pruner",
        "none",
        "--study",
        "cut",
    ]
    _killed(fault_project, argv, "trial-epoch@2", fault_env, tmp_path / "kill")
    assert _trial_states(fault_project, "cut") == ["RUNNING"]  # as the kill left it
    with Project.open(fault_project) as project:
        assert project.tuning.get("cut").status == "stopped"
    assert _trial_states(fault_project, "cut") == ["FAIL"]
    assert stuck(fault_project) == []
    resumed = run(
        ["tune", str(fault_project), "--resume", "cut", "--json"], fault_env, tmp_path / "resume"
    )
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["status"] == "finished" and result["trials"]["complete"] == 3
    assert result["trials"]["running"] == 0 and result["model"]


# -- (e) metric rows after a resume -------------------------------------------------------


def test_a_resumed_run_records_each_step_once(
    fault_project: Path, fault_env: dict[str, str], tmp_path: Path
) -> None:
    _killed(fault_project, _train(fault_project), "mid-flush", fault_env, tmp_path / "kill")
    run_id, _ = _runs(fault_project)[-1]
    with readonly(fault_project) as conn:
        (flushed,) = conn.execute(
            "SELECT COUNT(*) FROM run_metrics WHERE run_id = ? AND name = 'loss'", (run_id,)
        ).fetchone()
        checkpoint = conn.execute(
            "SELECT epoch FROM checkpoints WHERE run_id = ? AND kind = 'last'", (run_id,)
        ).fetchone()
    assert flushed > 0 and checkpoint is None  # steps committed beyond any checkpoint
    _resume(fault_project, run_id, fault_env, tmp_path / "resume")
    check_run_metrics(fault_project, run_id, TRAIN_EPOCHS)
