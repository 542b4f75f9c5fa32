"""What a command costs before and after its work: the modules it imports (only what its
steps need) and how its process ends (at once, once nothing is left to close).

Each case runs a real command in a fresh interpreter on a real project file.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_cli import cli

pytestmark = pytest.mark.slow

SAMPLES = Path(__file__).resolve().parents[2] / "resources" / "sample_data"
#: Compiler machinery, and libraries a train or an export step has no use for.
NOT_NEEDED = ("torch._dynamo", "torch._inductor", "sympy", "sklearn", "scipy", "pandas")

# Runs ``main`` (which returns) and prints, at exit, which of the watched modules
# were imported. A result printed from atexit shows that the ordinary exit ran.
_WATCH = """
import atexit, json, sys
watched = json.loads(sys.argv[1])
atexit.register(lambda: print("LOADED", json.dumps([m for m in watched if m in sys.modules]),
                              file=sys.stderr))
from lepton_desktop.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def _trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("start-up") / "template.lepton"
    cli("new", path)
    cli("import", path, SAMPLES / "iris.csv", "--name", "iris", "--target", "species")
    cli("train", path, "iris", "--arch", "mlp", "--epochs", "2")
    return path


@pytest.fixture
def project(_trained: Path, tmp_path: Path) -> Path:
    path = tmp_path / "p.lepton"
    shutil.copy(_trained, path)
    return path


def _loaded(*args: object, watched: tuple[str, ...]) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", _WATCH, json.dumps(watched), *map(str, args)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("LOADED "), proc.stderr
    return list(json.loads(line.removeprefix("LOADED ")))


def test_training_imports_torch_but_no_compiler_and_no_sklearn_or_pandas(project: Path) -> None:
    # (With the strong baseline too: scikit-learn is imported in its own process.)
    loaded = _loaded(
        "train", project, "iris", "--arch", "mlp", "--epochs", "1", "--no-strong-baseline",
        "--json", watched=("torch", *NOT_NEEDED),
    )  # fmt: skip
    assert loaded == ["torch"]  # it trained in this process, on torch alone


def test_the_strong_baseline_imports_scikit_learn_in_its_own_process(project: Path) -> None:
    from lepton_desktop.core.project import Project

    loaded = _loaded(
        "train", project, "iris", "--arch", "mlp", "--epochs", "1", "--json",
        watched=("torch", *NOT_NEEDED),
    )  # fmt: skip
    assert loaded == ["torch"]  # scikit-learn was imported beside, not here
    with Project.open(project) as opened:
        newest = max(opened.runs.list(), key=lambda run: run.id)
        assert newest.evaluation["strong_baseline"]["candidates"]


@pytest.mark.parametrize("format", ["torchscript", "bundle"])
def test_export_imports_no_compiler_and_no_sklearn_or_pandas(
    project: Path, tmp_path: Path, format: str
) -> None:
    out = tmp_path / f"iris.{format}"
    loaded = _loaded(
        "export", project, "iris-mlp", "--format", format, "--out", out,
        watched=("torch", *NOT_NEEDED),
    )  # fmt: skip
    assert loaded == ["torch"] and out.exists()


def test_a_worker_loads_its_job_functions_without_torch() -> None:
    # The worker dispatch imports every job kind; each imports its heavy libraries
    # only when it runs (the training worker imports torch inside train_job).
    script = (
        "import sys, lepton_desktop.workers.kinds, lepton_desktop.cli.worker; "
        f"print([m for m in {('torch', 'optuna', *NOT_NEEDED)!r} if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


# Runs ``run`` (the console script's entry) with an atexit hook that prints ATEXIT: the
# ordinary exit runs it, a prompt os._exit does not. ``setup`` runs first.
_RUN = """
import atexit, sys
atexit.register(lambda: print("ATEXIT", file=sys.stderr, flush=True))
exec(sys.argv[1])
sys.argv = ["lepton-desktop", *sys.argv[2:]]
from lepton_desktop.cli import run
run()
"""


def _run(setup: str, *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _RUN, setup, *map(str, args)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def _no_wal_and_intact(path: Path) -> None:
    # The last connection's close folds the WAL into the file and deletes it: nothing
    # of the command's work lives outside the project file.
    assert not path.with_name(path.name + "-wal").exists()
    assert not path.with_name(path.name + "-shm").exists()
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def test_a_finished_train_ends_at_once_with_its_work_in_the_file(project: Path) -> None:
    done = _run("", "train", project, "iris", "--arch", "mlp", "--epochs", "1", "--json")
    assert done.returncode == 0, done.stderr
    assert "ATEXIT" not in done.stderr  # the prompt exit: no interpreter teardown
    result = json.loads(done.stdout)  # flushed before the exit, whole
    _no_wal_and_intact(project)
    runs = json.loads(cli("info", project, "--json").stdout)["runs"]
    assert {"id": result["run_id"], "status": "finished"}.items() <= runs[0].items()


def test_a_finished_bundle_export_ends_at_once(project: Path, tmp_path: Path) -> None:
    # onnxruntime keeps its own SQLite file (a telemetry cache) open to the end, and
    # tearing it down took ~2 s: it is not ours to close, so it does not hold the exit.
    out = tmp_path / "iris.zip"
    done = _run("", "export", project, "iris-mlp", "--format", "bundle", "--out", out, "--json")
    assert done.returncode == 0, done.stderr
    assert "ATEXIT" not in done.stderr
    assert json.loads(done.stdout)["path"] == str(out) and out.stat().st_size > 0
    _no_wal_and_intact(project)


def test_a_user_error_ends_at_once_with_its_message_and_status(project: Path) -> None:
    done = _run("", "train", project, "nosuch", "--arch", "mlp")
    assert done.returncode == 2 and "ATEXIT" not in done.stderr
    assert done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1
    _no_wal_and_intact(project)


@pytest.mark.parametrize(
    ("setup", "why"),
    [
        (
            # A non-daemon thread with work left (it waits for the main thread to end):
            # the ordinary exit lets it finish.
            "import threading\n"
            "threading.Thread(target=lambda: (threading.main_thread().join(), "
            "print('THREAD DONE', file=sys.stderr, flush=True))).start()",
            "THREAD DONE",
        ),
        (
            # A project still open (a connection nobody closed): the ordinary exit closes it.
            "from lepton_desktop.core.project import Project\n"
            "kept = Project.open(sys.argv[3])",
            "",
        ),
    ],
    ids=["thread-running", "project-open"],
)
def test_the_ordinary_exit_runs_when_something_is_left(
    project: Path, setup: str, why: str
) -> None:
    done = _run(setup, "info", project, "--json")
    assert done.returncode == 0, done.stderr
    assert "ATEXIT" in done.stderr and why in done.stderr
    assert json.loads(done.stdout)["runs"]
    _no_wal_and_intact(project)
