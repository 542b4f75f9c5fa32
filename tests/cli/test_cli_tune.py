"""``tune`` on the command line, and optuna-dashboard reading the project file as it is."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lepton_desktop.core.project import Project
from tests.cli.test_cli import assert_user_error, cli
from tests.helpers import snapshot

pytestmark = pytest.mark.slow
SAMPLES = Path(__file__).resolve().parents[2] / "resources" / "sample_data"


@pytest.fixture(scope="module")
def _iris(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-tune") / "iris.lepton"
    with Project.create(path) as project:
        project.import_dataset(SAMPLES / "iris.csv", "iris", target="species")
    return path


@pytest.fixture(scope="module")
def tuned(_iris: Path) -> tuple[Path, dict]:
    """The iris project after ``tune ... --json`` (3 trials)."""
    path = _iris.with_name("tuned.lepton")
    shutil.copy(_iris, path)
    out = cli("tune", path, "iris", "--arch", "mlp", "--trials", "3", "--epochs", "3", "--json")
    return path, json.loads(out.stdout)


@pytest.fixture
def iris(_iris: Path, tmp_path: Path) -> Path:
    path = tmp_path / "p.lepton"
    shutil.copy(_iris, path)
    return path


def test_tune_json_info_and_resume(tuned, tmp_path: Path) -> None:
    path, result = tuned
    assert result["study"] == "iris-mlp" and result["n_trials"] == 3
    assert result["model"] == "iris-mlp:1" and result["status"] == "finished"
    assert isinstance(result["best_value"], float) and set(result["best_params"]) >= {"lr"}
    info = json.loads(cli("info", path, "--json").stdout)
    (study,) = info["studies"]
    assert study["name"] == "iris-mlp" and study["model"] == "iris-mlp:1"
    copy = tmp_path / "copy.lepton"
    shutil.copy(path, copy)
    more = json.loads(cli("tune", copy, "--resume", "iris-mlp", "--trials", "2", "--json").stdout)
    assert more["n_trials"] == 5 and more["study"] == "iris-mlp"


def test_a_toml_space_with_the_grid_sampler(iris: Path, tmp_path: Path) -> None:
    space = tmp_path / "space.toml"
    space.write_text('[optimizer]\ntype = "categorical"\nchoices = ["adam", "sgd"]\n')
    out = cli(
        "tune", iris, "iris", "--arch", "mlp", "--trials", "9", "--sampler", "grid",
        "--space", space, "--epochs", "2", "--study", "grid-1",
    ).stdout  # fmt: skip
    assert out.startswith("study grid-1 finished: 2 trials") and "model iris-mlp:1" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trials", "0"], "--trials 0: must be a whole number of at least 1"),
        (["--trials", "2", "--sampler", "bogus"], "--sampler 'bogus': choose one of"),
        (["--trials", "2", "--pruner", "asha"], "--pruner 'asha': choose one of"),
        (["--trials", "2", "--storage", "postgresql://x@127.0.0.1:1/db"], "cannot be opened"),
        (["--trials", "2", "--space", "EMPTY"], "the search space is empty"),
        ([], "give --trials N"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    iris: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    args = [str(empty) if a == "EMPTY" else a for a in args]
    before = snapshot(iris)
    started = time.monotonic()
    proc = cli("tune", iris, "iris", "--arch", "mlp", *args, check=False)
    assert time.monotonic() - started < 30  # an unreachable server fails fast
    assert_user_error(proc, message)
    assert snapshot(iris) == before


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_optuna_dashboard_opens_the_project_file(tuned) -> None:
    path, result = tuned
    port = _free_port()
    dashboard = Path(sys.executable).with_name("optuna-dashboard")
    process = subprocess.Popen(
        # (optuna-dashboard takes a .lepton file as a URL: given a bare path it asks
        # for "sqlite:///PATH" itself.)
        [str(dashboard), f"sqlite:///{path}", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        studies = _get_studies(port)
        (study,) = [s for s in studies if s["study_name"] == result["study"]]
        assert study["directions"] == ["maximize"]
    finally:
        process.terminate()
        process.wait(timeout=10)
    with Project.open(path) as project:  # still ours, untouched in header and contents
        assert project.integrity_ok() and project.tuning.get("iris-mlp").status == "finished"


def _get_studies(port: int) -> list[dict]:
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        while True:
            try:
                response = client.get("/api/studies")
                if response.status_code == 200:
                    return response.json()["study_summaries"]
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "optuna-dashboard did not answer"
            time.sleep(0.2)
