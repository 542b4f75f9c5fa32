"""Encrypted projects from the command line, and every part of the app working on one.

Real subprocesses: the commands, a training worker, a tuning job with a second trial
process, a server answering a request. The passphrase comes as a user gives it
(``LEPTON_PASSPHRASE`` or ``--passphrase-file``); workers get the derived key from
their parent's environment, never the passphrase or a command-line argument.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import optuna
import pytest

from lepton_desktop.core.project import Project
from lepton_desktop.core.store import keys
from lepton_desktop.core.system import launch
from lepton_desktop.core.training.config import TrainConfig
from lepton_desktop.core.tuning.storage import open_storage
from tests.cli.test_cli import assert_user_error, cli
from tests.serving_factory import rows

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "resources" / "sample_data"
PASSPHRASE = "correct horse battery"
WITH_PASSPHRASE = {"LEPTON_PASSPHRASE": PASSPHRASE}
#: iris's class names: in the plain file, never in the encrypted one's bytes.
SPECIES = (b"setosa", b"versicolor", b"virginica")


pytestmark = pytest.mark.usefixtures("forgotten_keys")


@pytest.fixture
def encrypted(tmp_path: Path) -> Path:
    project = tmp_path / "p.lepton"
    cli("new", project)
    cli("import", project, SAMPLES / "iris.csv", "--name", "iris", "--target", "species")
    out = json.loads(cli("encrypt", project, "--json", env=WITH_PASSPHRASE).stdout)
    assert out["encrypted"] is True and out["rows"] >= 150
    return project


def test_encrypt_info_decrypt_from_the_command_line(encrypted: Path, tmp_path: Path) -> None:
    assert all(s not in encrypted.read_bytes() for s in SPECIES)
    secret = tmp_path / "passphrase.txt"
    secret.write_text(PASSPHRASE + "\n")
    info = json.loads(cli("info", encrypted, "--json", "--passphrase-file", secret).stdout)
    assert info["datasets"][0]["rows"] == 150
    out = json.loads(cli("--passphrase-file", secret, "decrypt", encrypted, "--json").stdout)
    assert out == {**out, "encrypted": False, "path": str(encrypted)}
    assert encrypted.read_bytes().startswith(b"SQLite format 3\x00")
    assert any(s in encrypted.read_bytes() for s in SPECIES)
    info = json.loads(cli("info", encrypted, "--json").stdout)  # no passphrase needed now
    assert info["datasets"][0]["rows"] == 150


def test_encrypted_project_mistakes_are_one_line_and_change_nothing(
    encrypted: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    before = encrypted.read_bytes()
    siblings = sorted(p.name for p in tmp_path.iterdir())
    assert_user_error(cli("info", encrypted, check=False), "passphrase is needed")
    wrong = {"LEPTON_PASSPHRASE": "not the passphrase"}
    assert_user_error(cli("info", encrypted, check=False, env=wrong), "does not open")
    assert_user_error(cli("decrypt", encrypted, check=False, env=wrong), "does not open")
    assert_user_error(
        cli("encrypt", encrypted, check=False, env=WITH_PASSPHRASE), "already encrypted"
    )
    assert_user_error(
        cli("info", encrypted, "--passphrase-file", empty, check=False), "the file is empty"
    )
    assert encrypted.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == siblings


def test_plain_project_mistakes_change_nothing(tmp_path: Path) -> None:
    project = tmp_path / "plain.lepton"
    cli("new", project)
    before = project.read_bytes()
    assert_user_error(cli("decrypt", project, check=False), "not encrypted")
    short = {"LEPTON_PASSPHRASE": "short"}
    assert_user_error(cli("encrypt", project, check=False, env=short), "too short")
    assert_user_error(cli("encrypt", project, check=False), "a new passphrase is needed")
    assert project.read_bytes() == before


def _worker_env() -> dict[str, str]:
    """What a GUI or CLI parent hands its workers: the key, not the passphrase."""
    env = launch.worker_env(dict(os.environ, PYTHONPATH=str(REPO)))
    assert PASSPHRASE not in json.dumps(env) and keys.KEYS_ENV in env
    return env


@pytest.mark.slow
def test_every_part_works_on_an_encrypted_project(encrypted: Path, tmp_path: Path) -> None:
    cli("prep", encrypted, "iris", "--split", "0.7,0.15,0.15", "--seed", "1",
        env=WITH_PASSPHRASE)  # fmt: skip
    # Training in a worker process, as the GUI starts it.
    Project.unlock(encrypted, PASSPHRASE)
    config = TrainConfig.from_dict({"arch": "mlp", "epochs": 2, "schedule": "none"})
    with Project.open(encrypted) as project:
        run, job_id = project.runs.queue("iris", config)
    argv = launch.worker_argv("train", encrypted, job_id)
    assert not any(keys.key_for(encrypted) in a for a in argv)  # type: ignore[operator]
    worker = subprocess.run(argv, env=_worker_env(), capture_output=True, timeout=300)
    assert worker.returncode == 0, worker.stderr.decode()
    with Project.open(encrypted) as project:
        assert project.runs.get(run.id).status == "finished"
        assert project.models.get("iris-mlp").version == 1
    # Tuning: two trials, one of them in a second (trial worker) process.
    tune = subprocess.run(
        [sys.executable, "-m", "lepton_desktop", "tune", str(encrypted), "iris", "--arch", "mlp",
         "--trials", "8", "--jobs", "2", "--epochs", "150", "--pruner", "none", "--json"],
        env=dict(os.environ, PYTHONPATH=str(REPO), **WITH_PASSPHRASE),
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip  (~1 s a trial: the main process alone would take ~10 s,
    # the trial worker starts in 2-3 s, so it surely gets some; at 30 epochs a fast
    # machine ran all of them in the main process before the worker had started)
    assert tune.returncode == 0, tune.stderr
    study = json.loads(tune.stdout)
    assert study["trials"]["complete"] == 8 and study["status"] == "finished"
    loaded = optuna.load_study(  # Optuna itself, through SQLAlchemy, on the encrypted file
        study_name=study["study"], storage=open_storage(None, encrypted)
    )
    assert len({t.user_attrs["worker"] for t in loaded.trials}) == 2  # two processes
    # Serving one request, logged into the encrypted file.
    served = _serve_one_request(encrypted)
    with Project.open(encrypted) as project:
        (deployment,) = project.serving.list()
        assert project.serving.request_count(deployment.id) == 1
        assert str(served["model"]).startswith("iris-mlp:")  # the tuned best is :2
    # Export.
    out = cli("export", encrypted, "iris-mlp:1", "--format", "onnx", "--out",
              tmp_path / "iris.onnx", "--json", env=WITH_PASSPHRASE)  # fmt: skip
    assert json.loads(out.stdout)["max_abs_diff"] < 1e-4
    # Nothing readable left: the file, and whatever is beside it.
    left = [p for p in tmp_path.iterdir() if p.name.startswith(encrypted.name)]
    for path in left:
        for data in ([path.read_bytes()] if path.is_file()
                     else [f.read_bytes() for f in path.rglob("*") if f.is_file()]):  # fmt: skip
            assert all(s not in data for s in SPECIES), path


def _serve_one_request(project: Path) -> dict[str, object]:
    env = dict(os.environ, PYTHONPATH=str(REPO), **WITH_PASSPHRASE)
    env.pop(keys.KEYS_ENV, None)  # the server unlocks it itself, from the passphrase
    process = subprocess.Popen(
        [sys.executable, "-m", "lepton_desktop", "serve", str(project), "--port", "0",
         "--model", "iris-mlp"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match, (line, process.stderr.read() if process.stderr else "")
        answer = httpx.post(match.group(0) + "/predict", json=rows()[:1], timeout=60)
        assert answer.status_code == 200, answer.text
        time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, process.communicate()[1]
    return dict(answer.json())
