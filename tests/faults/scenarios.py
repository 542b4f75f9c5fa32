"""The commands the fault suite kills, how each is resumed, and what "done" means.

Every scenario starts from a copy of one template project (``iris:1``, ``iris:2``
scaled and split, ``big:1`` with 60,000 rows, a trained ``iris-mlp``) and runs the
real command line. After a kill, :meth:`Scenario.resume` says which command carries
the work on (the same import again, ``train --resume RUN``, ``tune --resume STUDY``,
a new server), or None when the work is already done; :meth:`Scenario.check` then
asserts it was done exactly once.
"""

from __future__ import annotations

import dataclasses
import random
import signal
import sqlite3
from pathlib import Path

import httpx

from tests.faults.harness import Command, Ended, cli_env, readonly, run

#: Rows of the CSV the import scenario imports (several of Arrow's read blocks).
BIG_ROWS = 60_000
TRAIN_EPOCHS = 6
TUNE_TRIALS = 3
STUDY = "kills"


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One command family under the knife.

    Attributes:
        kind: import, prep, train, tune or serve.
        points: kill points worth trying with the largest hit count that is reached.
        typical_s: about how long a full run takes here (random kills land inside).
        serving: the command runs until stopped.
    """

    kind: str
    points: tuple[tuple[str, int], ...]
    typical_s: float
    serving: bool = False

    def start(self, project: Path, data: Path) -> list[str]:
        """The command that begins the work."""
        return _START[self.kind](project, data)

    def resume(self, project: Path, data: Path) -> list[str] | None:
        """The command that carries the work on after a kill; None when it is done."""
        return _RESUME[self.kind](project, data)

    def check(self, project: Path) -> None:
        """Assert the work was done, exactly once."""
        _CHECK[self.kind](project)

    def random_point(self, rng: random.Random) -> str:
        """A kill point with a hit count drawn at random (``POINT@N``)."""
        point, most = rng.choice(self.points)
        return f"{point}@{rng.randint(1, most)}"


SCENARIOS = {
    "import": Scenario(
        "import",
        (("after-queue", 1), ("after-claim", 1), ("after-rows", 3), ("mid-transaction", 8)),
        3.0,
    ),
    "prep": Scenario(
        "prep",
        (("after-queue", 1), ("after-claim", 1), ("after-rows", 3), ("mid-transaction", 8)),
        4.0,
    ),
    "train": Scenario(
        "train",
        (
            ("after-queue", 1),
            ("after-claim", 1),
            ("mid-transaction", 12),
            ("mid-flush", 2),
            ("after-register", 1),
        ),
        12.0,
    ),
    "tune": Scenario(
        "tune",
        (
            ("after-queue", 1),
            ("after-claim", 2),
            ("mid-transaction", 40),
            ("trial-epoch", 6),
            ("mid-flush", 1),
            ("after-register", 1),
        ),
        30.0,
    ),
    "serve": Scenario(
        "serve",
        (("after-queue", 1), ("after-claim", 1), ("mid-transaction", 4), ("serving", 1)),
        10.0,
        serving=True,
    ),
}


# -- starting ------------------------------------------------------------------------


def _start_import(project: Path, data: Path) -> list[str]:
    return [
        "import",
        str(project),
        str(data / "big.csv"),
        "--name",
        "fresh",
        "--target",
        "label",
        "--json",
    ]


def _start_prep(project: Path, data: Path) -> list[str]:
    return [
        "prep",
        str(project),
        "big:1",
        "--scale",
        "standard",
        "--split",
        "0.7,0.15,0.15",
        "--json",
    ]


def _start_train(project: Path, data: Path) -> list[str]:
    return [
        "train",
        str(project),
        "iris:2",
        "--arch",
        "mlp",
        "--epochs",
        str(TRAIN_EPOCHS),
        "--name",
        "killed",
        "--json",
    ]


def _start_tune(project: Path, data: Path) -> list[str]:
    return [
        "tune",
        str(project),
        "iris:2",
        "--arch",
        "mlp",
        "--trials",
        str(TUNE_TRIALS),
        "--jobs",
        "2",
        "--epochs",
        "3",
        "--pruner",
        "none",
        "--study",
        STUDY,
        "--json",
    ]


def _start_serve(project: Path, data: Path) -> list[str]:
    return ["serve", str(project), "--port", "0", "--model", "iris-mlp", "--workers", "2"]


_START = {
    "import": _start_import,
    "prep": _start_prep,
    "train": _start_train,
    "tune": _start_tune,
    "serve": _start_serve,
}


# -- resuming ------------------------------------------------------------------------


def _versions(project: Path, name: str) -> int:
    with readonly(project) as conn:
        return conn.execute(
            "SELECT COUNT(*) FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id "
            "WHERE d.name = ? AND v.status = 'ready'",
            (name,),
        ).fetchone()[0]


def _resume_import(project: Path, data: Path) -> list[str] | None:
    return None if _versions(project, "fresh") else _start_import(project, data)


def _resume_prep(project: Path, data: Path) -> list[str] | None:
    return None if _versions(project, "big") >= 2 else _start_prep(project, data)


def _killed_run(project: Path) -> tuple[int, str] | None:
    """The scenario's run (its model is named ``killed``): id and status."""
    with readonly(project) as conn:
        return conn.execute(
            "SELECT id, status FROM runs WHERE json_extract(config, '$.model_name') = 'killed' "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()


def _resume_train(project: Path, data: Path) -> list[str] | None:
    found = _killed_run(project)
    if found is None:
        return _start_train(project, data)
    run_id, status = found
    if status in ("finished", "stopped"):
        return None
    return ["train", str(project), "--resume", str(run_id), "--json"]


def _study(project: Path) -> tuple[str, int | None] | None:
    with readonly(project) as conn:
        return conn.execute(
            "SELECT status, best_model_id FROM tuning_studies WHERE name = ?", (STUDY,)
        ).fetchone()


def _resume_tune(project: Path, data: Path) -> list[str] | None:
    found = _study(project)
    if found is None:
        return _start_tune(project, data)
    if found[0] == "finished" and found[1] is not None:
        return None
    return ["tune", str(project), "--resume", STUDY, "--json"]


def _resume_serve(project: Path, data: Path) -> list[str] | None:
    return _start_serve(project, data)


_RESUME = {
    "import": _resume_import,
    "prep": _resume_prep,
    "train": _resume_train,
    "tune": _resume_tune,
    "serve": _resume_serve,
}


# -- done, exactly once ---------------------------------------------------------------


def _check_import(project: Path) -> None:
    with readonly(project) as conn:
        rows = conn.execute(
            "SELECT v.id, v.n_rows FROM dataset_versions v JOIN datasets d "
            "ON d.id = v.dataset_id WHERE d.name = 'fresh'"
        ).fetchall()
        assert len(rows) == 1 and rows[0][1] == BIG_ROWS, rows
        _no_stray_tables(conn)


def _check_prep(project: Path) -> None:
    with readonly(project) as conn:
        rows = conn.execute(
            "SELECT v.version, v.n_rows, v.splits IS NOT NULL FROM dataset_versions v "
            "JOIN datasets d ON d.id = v.dataset_id WHERE d.name = 'big' ORDER BY v.version"
        ).fetchall()
        assert rows == [(1, BIG_ROWS, 0), (2, BIG_ROWS, 1)], rows
        _no_stray_tables(conn)


def _no_stray_tables(conn: sqlite3.Connection) -> None:
    tables = {
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name LIKE 'ds\\_%' ESCAPE '\\'"
        )
    }
    versions = {f"ds_{r[0]}" for r in conn.execute("SELECT id FROM dataset_versions")}
    assert tables == versions, f"row tables without a version: {sorted(tables - versions)}"


def check_run_metrics(project: Path, run_id: int, epochs: int) -> None:
    """Each step and epoch of a run recorded once: no row repeated after a resume."""
    with readonly(project) as conn:
        repeated = conn.execute(
            "SELECT name, step, epoch, COUNT(*) FROM run_metrics WHERE run_id = ? "
            "GROUP BY name, step, epoch HAVING COUNT(*) > 1",
            (run_id,),
        ).fetchall()
        steps = [
            r[0]
            for r in conn.execute(
                "SELECT step FROM run_metrics WHERE run_id = ? AND name = 'loss' ORDER BY step",
                (run_id,),
            )
        ]
        val = [
            r[0]
            for r in conn.execute(
                "SELECT epoch FROM run_metrics WHERE run_id = ? AND name = 'val_loss' "
                "ORDER BY epoch",
                (run_id,),
            )
        ]
    assert not repeated, f"metric rows recorded twice: {repeated[:5]}"
    assert steps == list(range(1, len(steps) + 1)), "loss steps are not 1..N"
    assert val == list(range(1, epochs + 1)), val


def _check_train(project: Path) -> None:
    found = _killed_run(project)
    assert found is not None and found[1] == "finished", found
    with readonly(project) as conn:
        (versions,) = conn.execute(
            "SELECT COUNT(*) FROM model_versions WHERE run_id = ?", (found[0],)
        ).fetchone()
    assert versions == 1, f"run {found[0]} registered {versions} model versions"
    check_run_metrics(project, found[0], TRAIN_EPOCHS)


def _check_tune(project: Path) -> None:
    found = _study(project)
    assert found is not None and found[0] == "finished" and found[1] is not None, found
    with readonly(project) as conn:
        per_trial = conn.execute(
            "SELECT json_extract(params, '$.trial'), COUNT(*) FROM model_versions "
            "WHERE json_extract(params, '$.study') = ? GROUP BY 1",
            (STUDY,),
        ).fetchall()
        (done,) = conn.execute(
            "SELECT COUNT(*) FROM trials t JOIN tuning_studies s ON s.optuna_study_id = "
            "t.study_id WHERE s.name = ? AND t.state = 'COMPLETE'",
            (STUDY,),
        ).fetchone()
    assert all(n == 1 for _, n in per_trial), f"a trial registered twice: {per_trial}"
    assert done >= TUNE_TRIALS


def _check_serve(project: Path) -> None:
    with readonly(project) as conn:
        status = conn.execute("SELECT status FROM deployments ORDER BY id DESC LIMIT 1").fetchone()
    assert status == ("stopped",), status


_CHECK = {
    "import": _check_import,
    "prep": _check_prep,
    "train": _check_train,
    "tune": _check_tune,
    "serve": _check_serve,
}


# -- a server's resume: start it, ask it, stop it ------------------------------------------


def serve_once(argv: list[str], env: dict[str, str], folder: Path) -> Ended:
    """Start a server, wait until it answers a prediction, then stop it (SIGTERM)."""
    command = Command(argv, cli_env(env), folder)
    url = command.address(timeout=120)
    answered = url is not None and _predicts(url)
    if command.process.poll() is None:
        command.process.send_signal(signal.SIGTERM)
    ended = command.finish(timeout=60)
    if not answered:
        ended.returncode = ended.returncode or 1
        ended.stderr += "\nthe server never answered a prediction"
    return ended


def _predicts(url: str) -> bool:
    record = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    try:
        answer = httpx.post(f"{url}/predict", json={"records": [record]}, timeout=30)
    except httpx.HTTPError:
        return False
    return answer.status_code == 200


def carry_on(
    scenario: Scenario, project: Path, data: Path, env: dict[str, str], folder: Path
) -> Ended | None:
    """Run the scenario's resume command to its end (None: nothing was left to do)."""
    argv = scenario.resume(project, data)
    if argv is None:
        return None
    if scenario.serving:
        return serve_once(argv, env, folder)
    return run(argv, cli_env(env), folder)
