"""Scale-out: two ``tune`` processes share one study in a real PostgreSQL server.

The server is Debian's PostgreSQL, started for this module only: ``initdb`` into a
temporary folder and ``pg_ctl start`` on 127.0.0.1 on a free port (as the
``postgres`` user when the tests run as root: the server refuses to run as root).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from lepton_desktop.core.project import Project
from lepton_desktop.core.tuning.storage import with_driver

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "resources" / "sample_data"


def _postgres_bin() -> Path | None:
    candidates = [os.environ.get("LEPTON_PG_BIN", "")]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    candidates += sorted((str(p) for p in Path("/usr/lib/postgresql").glob("*/bin")), reverse=True)
    for folder in candidates:
        if folder and (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server:
    """A throwaway PostgreSQL cluster."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="lepton-pg-"))  # /tmp: reachable by postgres
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")

    def run(self, tool: str, *args: str) -> None:
        command = [str(self.bin_dir / tool), *args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120, cwd=self.root)

    def start(self) -> None:
        self.run("initdb", "-D", str(self.data), "-U", "lepton", "-A", "trust", "--no-sync")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        self.run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                 "-w", "start")  # fmt: skip
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "lepton", "tune")

    def stop(self) -> None:
        try:
            self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"postgresql://lepton@127.0.0.1:{self.port}/tune"


@pytest.fixture(scope="module")
def postgres() -> Iterator[_Server]:
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    server = _Server(bin_dir)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    yield server
    server.stop()


def _tune(project: Path, url: str) -> subprocess.Popen[str]:
    # Trials long enough (40 epochs) that one process cannot finish the budget alone
    # while the other is still importing torch on a loaded machine.
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "lepton_desktop", "tune", str(project), "iris"),
            *("--arch", "mlp", "--trials", "8", "--epochs", "40", "--pruner", "none"),
            *("--storage", url, "--study", "iris-pg", "--json"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_tune_processes_share_one_study_in_postgres(postgres: _Server, tmp_path: Path) -> None:
    project = tmp_path / "p.lepton"
    with Project.create(project) as created:
        created.import_dataset(SAMPLES / "iris.csv", "iris", target="species")
    first, second = _tune(project, postgres.url), _tune(project, postgres.url)
    results = []
    for process in (first, second):
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, err
        results.append(json.loads(out))
    # (Optuna itself, given postgresql://, asks SQLAlchemy for psycopg 3; with_driver
    # names the driver that is installed, as tune does.)
    study = optuna.load_study(study_name="iris-pg", storage=with_driver(postgres.url))
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) >= 8
    assert len({t.user_attrs["worker"] for t in complete}) == 2  # both processes ran trials
    # The project file links the study, holds a copy of it and its best model.
    with Project.open(project) as opened:
        linked = opened.tuning.get("iris-pg")
        assert linked.storage == postgres.url and linked.status == "finished"
        assert linked.best_model and {r["model"] for r in results} == {linked.best_model}
        model = opened.models.get(linked.best_model)
        assert model.params["study"] == "iris-pg" and model.params["trial"] == linked.best_trial
        assert len(opened.models.list()) == 1  # registered once, though both finished
    copy = optuna.load_study(study_name="iris-pg", storage=f"sqlite:///{project}")
    assert len(copy.trials) == len(study.trials) and copy.best_value == study.best_value
