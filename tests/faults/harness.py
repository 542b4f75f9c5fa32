"""The kill harness: run a real command, SIGKILL it, and judge what it left behind.

A command (``lepton-desktop import|prep|train|tune|serve ...``, the console script, in
its own session so its workers can be found) is killed one of two ways:

- at a named kill point (``LEPTON_KILL_AT``, see ``lepton_desktop.core.faults``): it
  kills itself there;
- at a random moment: the harness sends SIGKILL to the command alone (its workers
  must notice and stop) or to its whole process group (a power cut for the job).

Then, in this order: every process of the command's session must end by itself
(no orphan spends the budget); the file must pass ``integrity_check`` before anyone
recovers it; opening it (``Project.open`` runs recovery) must lose no row that was
committed (:func:`committed`); nothing may stay queued or running (:func:`stuck`);
and the scenario's resume must work. :class:`Tally` adds the verdicts up.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from lepton_desktop.core.project import Project

#: The real command line, as a user runs it (the console script of this environment).
CLI = Path(sys.executable).with_name("lepton-desktop")
#: A killed command's workers must be gone this long after it (parent-death signal,
#: or the portable watchdog's one-second look, then a clean cancellation).
ORPHAN_GRACE_S = 30.0


# -- what the file holds -------------------------------------------------------------


@contextlib.contextmanager
def readonly(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection that recovers nothing and writes nothing."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        yield conn
    finally:
        conn.close()


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def committed(path: Path) -> set[str]:
    """Keys of the rows that, once committed, no crash and no recovery may remove.

    Ready dataset versions with their row counts, runs, the metric rows up to each
    run's last checkpoint (a resume re-records later ones), checkpoints, model
    versions, studies, Optuna trials, deployments and logged requests. (Job rows
    are bookkeeping: a command forgets its failed jobs on purpose.)
    """
    with readonly(path) as conn:
        tables = _tables(conn)
        keys = {
            f"version {i} ({n} rows)"
            for i, n in conn.execute(
                "SELECT id, n_rows FROM dataset_versions WHERE status = 'ready'"
            )
        }
        for (version_id,) in conn.execute(
            "SELECT id FROM dataset_versions WHERE status = 'ready'"
        ).fetchall():
            (count,) = conn.execute(f"SELECT COUNT(*) FROM ds_{version_id}").fetchone()
            keys.add(f"rows of version {version_id}: {count}")
        for sql, name in _KEYED:
            keys |= {f"{name} {'/'.join(map(str, r))}" for r in conn.execute(sql)}
        if "trials" in tables:
            keys |= {f"trial {r[0]}" for r in conn.execute("SELECT trial_id FROM trials")}
    return keys


_KEYED = (
    ("SELECT id FROM runs", "run"),
    (
        "SELECT m.run_id, m.name, m.step, m.epoch FROM run_metrics m JOIN checkpoints c "
        "ON c.run_id = m.run_id AND c.kind = 'last' WHERE m.epoch <= c.epoch",
        "metric",
    ),
    ("SELECT run_id, kind FROM checkpoints", "checkpoint"),
    (
        "SELECT v.id, m.name, v.version FROM model_versions v JOIN models m ON m.id = v.model_id",
        "model",
    ),
    ("SELECT id FROM tuning_studies", "study"),
    ("SELECT id FROM deployments", "deployment"),
    ("SELECT request_id FROM request_log", "request"),
)


def stuck(path: Path) -> list[str]:
    """What is still queued, running, importing or RUNNING (read as it is)."""
    with readonly(path) as conn:
        found = [
            f"{what} {key} {status}" for sql, what in _ACTIVE for key, status in conn.execute(sql)
        ]
        if "trials" in _tables(conn):
            found += [
                f"trial {r[0]} RUNNING"
                for r in conn.execute(
                    "SELECT t.trial_id FROM trials t JOIN tuning_studies s "
                    "ON s.optuna_study_id = t.study_id AND s.storage IS NULL "
                    "WHERE t.state = 'RUNNING'"
                )
            ]
    return found


_ACTIVE = (
    ("SELECT id, status FROM jobs WHERE status IN ('queued', 'running')", "job"),
    ("SELECT id, status FROM runs WHERE status IN ('queued', 'running', 'paused')", "run"),
    (
        "SELECT id, status FROM deployments WHERE status IN ('queued', 'starting', 'running')",
        "deployment",
    ),
    ("SELECT name, status FROM tuning_studies WHERE status = 'running'", "study"),
    ("SELECT id, status FROM dataset_versions WHERE status = 'importing'", "version"),
)


def damage(path: Path) -> list[str]:
    """``integrity_check`` and ``foreign_key_check`` findings (empty: the file is sound)."""
    with readonly(path) as conn:
        problems = [r[0] for r in conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
        problems += [f"foreign key: {r}" for r in conn.execute("PRAGMA foreign_key_check")]
    return problems


# -- running and killing a command --------------------------------------------------


@dataclasses.dataclass
class Ended:
    """How a command ended: its exit status, whether a kill ended it, what it printed."""

    returncode: int
    killed: bool
    stdout: str
    stderr: str
    seconds: float
    orphans: int = 0


def cli_env(base: dict[str, str], kill_at: str | None = None) -> dict[str, str]:
    """The command's environment: ``base``, plus ``LEPTON_KILL_AT`` when given."""
    env = {k: v for k, v in base.items() if k != "LEPTON_KILL_AT"}
    if kill_at is not None:
        env["LEPTON_KILL_AT"] = kill_at
    return env


class Command:
    """One command line started in its own session, its output kept in files."""

    def __init__(self, argv: list[str], env: dict[str, str], folder: Path) -> None:
        self.argv = argv
        folder.mkdir(parents=True, exist_ok=True)
        self._out = (folder / "stdout").open("w+")
        self._err = (folder / "stderr").open("w+")
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [str(CLI), *argv],
            env=env,
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=self._err,
            text=True,
            start_new_session=True,
        )
        self.group = self.process.pid  # a new session: its id is the leader's pid

    def output(self) -> tuple[str, str]:
        """What it printed so far."""
        outputs = []
        for handle in (self._out, self._err):
            handle.flush()
            handle.seek(0)
            outputs.append(handle.read())
        return outputs[0], outputs[1]

    def address(self, timeout: float) -> str | None:
        """The URL a ``serve`` command printed, once it did (None: it ended first)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"http://127\.0\.0\.1:\d+", self.output()[0])
            if found:
                return found.group(0)
            if self.process.poll() is not None:
                return None
            time.sleep(0.1)
        return None

    def kill(self, whole_group: bool) -> bool:
        """SIGKILL the command (and its group); False if it had ended already."""
        if self.process.poll() is not None:
            return False
        with contextlib.suppress(ProcessLookupError):
            if whole_group:
                os.killpg(self.group, signal.SIGKILL)
            else:
                self.process.kill()
        return True

    def finish(self, timeout: float, *, killed_by_us: bool = False) -> Ended:
        """Wait for the command and every process of its session; return how it ended."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(whole_group=True)
            code = self.process.wait()
        orphans = wait_group(self.group, ORPHAN_GRACE_S)
        out, err = self.output()
        self._out.close()
        self._err.close()
        killed = code == -signal.SIGKILL
        seconds = time.monotonic() - self.started
        return Ended(code, killed or killed_by_us, out, err, seconds, orphans)


def group_members(group: int) -> list[psutil.Process]:
    """Live (not zombie) processes of a process group."""
    members = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(process.pid) == group and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process)
    return members


def wait_group(group: int, timeout: float) -> int:
    """Wait until the group is empty; kill and count what is left after ``timeout``."""
    deadline = time.monotonic() + timeout
    while members := group_members(group):
        if time.monotonic() > deadline:
            for process in members:
                with contextlib.suppress(psutil.Error):
                    process.kill()
            return len(members)
        time.sleep(0.1)
    return 0


def run(argv: list[str], env: dict[str, str], folder: Path, timeout: float = 600) -> Ended:
    """Run a command to its end (nobody kills it)."""
    return Command(argv, env, folder).finish(timeout)


# -- verdicts ------------------------------------------------------------------------


@dataclasses.dataclass
class Verdict:
    """What one kill left: each list empty and ``orphans`` 0 when all is well."""

    how: str
    killed: bool
    damage: list[str]
    lost: list[str]
    stuck: list[str]
    orphans: int
    resumed: bool | None = None
    detail: str = ""

    @property
    def sound(self) -> bool:
        """Intact, nothing lost, nothing stuck, no orphan, and resumed when tried."""
        return (
            not self.damage
            and not self.lost
            and not self.stuck
            and not self.orphans
            and self.resumed is not False
        )

    def __str__(self) -> str:
        parts = [self.how, "killed" if self.killed else "not killed"]
        for name in ("damage", "lost", "stuck"):
            if getattr(self, name):
                parts.append(f"{name}: {getattr(self, name)[:5]}")
        if self.orphans:
            parts.append(f"{self.orphans} orphan processes")
        if self.resumed is False:
            parts.append(f"resume failed: {self.detail[-800:]}")
        return "; ".join(parts)


def judge(path: Path, how: str, ended: Ended, before: set[str]) -> Verdict:
    """Check a project after a command ended (killed or not), then open it once.

    ``before``: :func:`committed` taken before the command (or just before the kill).
    """
    damaged = damage(path)  # as the kill left it, before any recovery
    left = committed(path)
    with Project.open(path):  # recovery: dead jobs, orphan runs, trials, journals
        pass
    after = committed(path)
    lost = sorted((before | left) - after)
    return Verdict(how, ended.killed, damaged + damage(path), lost, stuck(path), ended.orphans)


@dataclasses.dataclass
class Tally:
    """Kills and their verdicts, added up for the long run's report."""

    verdicts: list[Verdict] = dataclasses.field(default_factory=list)
    resumes: int = 0
    resumes_ok: int = 0

    def add(self, verdict: Verdict) -> None:
        """Count one command's verdict (killed or not)."""
        self.verdicts.append(verdict)

    @property
    def kills(self) -> list[Verdict]:
        """The verdicts of commands that a kill ended."""
        return [v for v in self.verdicts if v.killed]

    def table(self, seconds: float) -> str:
        """The tally as a small table."""
        kills = self.kills
        rows = [
            ("kills", len(kills)),
            ("files intact", sum(not v.damage for v in kills)),
            ("rows lost", sum(len(v.lost) for v in kills)),
            ("stuck jobs/runs/trials after open", sum(len(v.stuck) for v in kills)),
            ("orphan processes", sum(v.orphans for v in kills)),
            ("resumes (chains ended) ok", f"{self.resumes_ok}/{self.resumes}"),
            ("commands not killed (point not reached)", len(self.verdicts) - len(kills)),
            ("minutes", f"{seconds / 60:.1f}"),
        ]
        by_kind: dict[str, int] = {}
        for verdict in kills:
            kind = verdict.how.split()[0]
            by_kind[kind] = by_kind.get(kind, 0) + 1
        shares = ", ".join(f"{kind} {n}" for kind, n in sorted(by_kind.items()))
        rows.append(("kills by command", shares))
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
